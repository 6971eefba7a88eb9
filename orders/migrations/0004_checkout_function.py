from django.db import migrations

from shop.sql_files import read_sql

PATH = "orders/sql/functions/checkout_place_v01.sql"


class Migration(migrations.Migration):
    # The function reads the catalog's tables in their latest shape.
    dependencies = [
        ("orders", "0003_plpgsql"),
        ("catalog", "0003_stock_level_version"),
    ]

    operations = [
        migrations.RunSQL(
            sql=read_sql(PATH),
            reverse_sql=read_sql(PATH.replace(".sql", "_reverse.sql")),
        ),
    ]
