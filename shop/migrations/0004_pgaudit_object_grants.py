from django.db import migrations

from shop.sql_files import read_sql


def sql_file(path):
    """RunSQL from a versioned .sql file and its _reverse twin."""
    return migrations.RunSQL(
        sql=read_sql(path), reverse_sql=read_sql(path.replace(".sql", "_reverse.sql"))
    )


class Migration(migrations.Migration):
    # Grants only: harmless where pgaudit is not loaded, and in force as soon
    # as it is (they are stored per database, hence a migration).
    dependencies = [("shop", "0003_row_level_security")]

    operations = [sql_file("shop/sql/audit/pgaudit_object_grants_v01.sql")]
