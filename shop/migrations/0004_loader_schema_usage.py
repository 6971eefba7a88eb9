from django.db import migrations

from shop.sql_files import sql_file


class Migration(migrations.Migration):
    # The loader's tables are each app's to grant, in migrations that depend
    # on this one (accounts 0006, catalog 0006, orders 0009).
    dependencies = [("shop", "0003_shared_functions")]

    operations = [sql_file("shop/sql/grants_loader_schema_v01.sql")]
