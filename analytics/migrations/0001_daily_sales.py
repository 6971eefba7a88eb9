from django.db import migrations

from shop.sql_files import sql_file


class Migration(migrations.Migration):
    # Reads orders_order and its row-level security policies.
    dependencies = [("orders", "0012_outbox_triggers")]

    operations = [
        sql_file("analytics/sql/views/daily_sales_v01.sql"),
        sql_file("analytics/sql/functions/daily_sales_refresh_v01.sql"),
    ]
