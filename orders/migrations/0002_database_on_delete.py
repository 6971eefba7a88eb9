from django.db import migrations

from shop.migration_ops import ForeignKeyOnDelete


class Migration(migrations.Migration):
    """Declare each foreign key's ON DELETE in the database (shop/migration_ops.py)."""

    dependencies = [("orders", "0001_orders_schema")]

    operations = [
        ForeignKeyOnDelete("cart", "customer", "CASCADE"),
        ForeignKeyOnDelete("cartitem", "cart", "CASCADE"),
        ForeignKeyOnDelete("cartitem", "variant", "CASCADE"),
        ForeignKeyOnDelete("order", "customer", "RESTRICT"),
        ForeignKeyOnDelete("order", "coupon", "RESTRICT"),
        ForeignKeyOnDelete("orderline", "order", "CASCADE"),
        ForeignKeyOnDelete("orderline", "variant", "RESTRICT"),
        ForeignKeyOnDelete("orderline", "warehouse", "RESTRICT"),
        ForeignKeyOnDelete("payment", "order", "RESTRICT"),
        ForeignKeyOnDelete("couponredemption", "coupon", "RESTRICT"),
        ForeignKeyOnDelete("couponredemption", "order", "CASCADE"),
        ForeignKeyOnDelete("couponredemption", "customer", "RESTRICT"),
        ForeignKeyOnDelete("idempotencykey", "customer", "CASCADE"),
        ForeignKeyOnDelete("idempotencykey", "order", "SET NULL"),
        ForeignKeyOnDelete("stockmovement", "stock_level", "CASCADE"),
        ForeignKeyOnDelete("stockmovement", "order", "SET NULL"),
    ]
