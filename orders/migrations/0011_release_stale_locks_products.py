from django.db import migrations

from shop.sql_files import read_sql

PROCEDURES = "orders/sql/procedures"


class Migration(migrations.Migration):
    """The stale-release procedure locks its products before its coupons (v04).

    catalog_product.in_stock's triggers lock a product when a stock write
    changes whether it has a unit available; v04 takes those locks in the
    global order, stock, products, coupons, as checkout does.
    """

    dependencies = [
        ("orders", "0010_order_list_index"),
        ("catalog", "0011_product_in_stock"),
    ]

    operations = [
        # Replaced, not altered: a procedure's body is one string.
        migrations.RunSQL(
            sql=[
                read_sql(f"{PROCEDURES}/release_stale_reservations_v03_reverse.sql"),
                read_sql(f"{PROCEDURES}/release_stale_reservations_v04.sql"),
            ],
            reverse_sql=[
                read_sql(f"{PROCEDURES}/release_stale_reservations_v04_reverse.sql"),
                read_sql(f"{PROCEDURES}/release_stale_reservations_v03.sql"),
            ],
        ),
    ]
