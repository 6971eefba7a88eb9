from django.db import migrations

from shop.sql_files import sql_file


class Migration(migrations.Migration):
    # Like 0001: existing tables now, later ones by default privileges. After
    # 0002, whose audit log it keeps the loader away from.
    dependencies = [("shop", "0003_shared_functions")]

    operations = [sql_file("shop/sql/grants_loader_v01.sql")]
