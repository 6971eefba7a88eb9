from django.db import migrations

from shop.sql_files import sql_file


class Migration(migrations.Migration):
    # Grants only: harmless where pgaudit is not loaded, and in force as soon
    # as it is (they are stored per database, hence a migration).
    dependencies = [("shop", "0003_row_level_security")]

    operations = [sql_file("shop/sql/audit/pgaudit_object_grants_v01.sql")]
