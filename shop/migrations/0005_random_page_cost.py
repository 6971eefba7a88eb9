from django.db import migrations

from shop.sql_files import sql_file


class Migration(migrations.Migration):
    # A setting of the database, stored per database: a migration, so the
    # test and benchmark databases get it too (see the SQL for why 1.1).
    dependencies = [("shop", "0004_loader_schema_usage")]

    operations = [sql_file("shop/sql/settings/random_page_cost_v01.sql")]
