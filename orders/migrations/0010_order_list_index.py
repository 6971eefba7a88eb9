from django.contrib.postgres.operations import (
    AddIndexConcurrently,
    RemoveIndexConcurrently,
)
from django.db import migrations, models


class Migration(migrations.Migration):
    """The order list's index gets the id, the list's tiebreaker.

    The list is ordered by (created_at DESC, id DESC); on (customer,
    -created_at) alone every page sorted all of the customer's orders
    (tests/orders/test_indexes.py). Built concurrently, outside a
    transaction (atomic = False), so placing orders goes on meanwhile; the
    new index exists before the old one is dropped.
    """

    atomic = False

    dependencies = [("orders", "0009_loader_grants")]

    operations = [
        AddIndexConcurrently(
            model_name="order",
            index=models.Index(
                fields=["customer", "-created_at", "-id"],
                name="orders_order_customer_page_idx",
            ),
        ),
        RemoveIndexConcurrently(model_name="order", name="orders_order_customer_idx"),
    ]
