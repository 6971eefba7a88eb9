from django.db import migrations

from shop.sql_files import sql_file


class Migration(migrations.Migration):
    dependencies = [
        ("orders", "0002_database_on_delete"),
        # The stock ledger's trigger sits on catalog_stock_level.
        ("catalog", "0002_database_on_delete"),
        ("shop", "0003_shared_functions"),
    ]

    operations = [
        sql_file("orders/sql/triggers/touch_updated_at_v01.sql"),
        sql_file("orders/sql/triggers/stock_ledger_v01.sql"),
        sql_file("orders/sql/functions/order_lines_total_v01.sql"),
        sql_file("orders/sql/procedures/release_stale_reservations_v01.sql"),
    ]
