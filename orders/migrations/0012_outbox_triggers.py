from django.db import migrations

from shop.sql_files import sql_file


class Migration(migrations.Migration):
    # The outbox and shop_outbox_append are the shop's (shop 0006); the
    # triggers on this app's tables are this app's.
    dependencies = [
        ("orders", "0011_release_stale_locks_products"),
        ("shop", "0006_outbox"),
    ]

    operations = [sql_file("orders/sql/triggers/outbox_v01.sql")]
