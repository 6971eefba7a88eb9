from django.db import migrations

from shop.sql_files import read_sql


class Migration(migrations.Migration):
    initial = True
    # No dependencies, so that shop, the bottom layer, depends on no app:
    # the grants cover the tables that exist when this runs (ALL TABLES) and,
    # through default privileges, every table shop_owner creates afterwards,
    # so the order in which Django interleaves the apps does not matter.
    dependencies = []

    operations = [
        migrations.RunSQL(
            sql=read_sql("shop/sql/grants_v01.sql"),
            reverse_sql=read_sql("shop/sql/grants_v01_reverse.sql"),
        ),
    ]
