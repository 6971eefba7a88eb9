from django.db import migrations

from shop.sql_files import sql_file


class Migration(migrations.Migration):
    dependencies = [("analytics", "0001_daily_sales")]

    operations = [
        sql_file("analytics/sql/functions/daily_sales_refresh_search_path_v01.sql")
    ]
