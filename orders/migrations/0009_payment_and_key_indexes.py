from django.contrib.postgres.operations import AddIndexConcurrently
from django.db import migrations, models

from shop.sql_files import sql_file


def unique_concurrently(name, sql_name, condition):
    """A partial UniqueConstraint whose index is built CONCURRENTLY.

    AddConstraint would build it with a lock that blocks every write to the
    table until the build ends; CREATE UNIQUE INDEX CONCURRENTLY does not.
    Django is told about the constraint separately (state_operations).
    """
    return migrations.SeparateDatabaseAndState(
        database_operations=[sql_file(f"orders/sql/indexes/{sql_name}")],
        state_operations=[
            migrations.AddConstraint(
                model_name="payment",
                constraint=models.UniqueConstraint(
                    condition=condition, fields=("order",), name=name
                ),
            )
        ],
    )


class Migration(migrations.Migration):
    """Indexes for recovery, refunds and the purge of expired keys.

    Not atomic: CREATE INDEX CONCURRENTLY cannot run in a transaction block,
    and it lets checkouts write the tables while the indexes are built.
    """

    atomic = False

    dependencies = [("orders", "0008_payment_outcomes")]

    operations = [
        unique_concurrently(
            "orders_payment_one_charge_per_order",
            "payment_one_charge_per_order_v01.sql",
            models.Q(
                ("status__in", ["unknown", "not_captured", "declined", "captured"])
            ),
        ),
        unique_concurrently(
            "orders_payment_one_refund_per_order",
            "payment_one_refund_per_order_v01.sql",
            models.Q(("status__in", ["refund_pending", "refunded"])),
        ),
        AddIndexConcurrently(
            model_name="payment",
            index=models.Index(
                condition=models.Q(("status", "refund_pending")),
                fields=["created_at"],
                name="orders_payment_refund_due_idx",
            ),
        ),
        AddIndexConcurrently(
            model_name="order",
            index=models.Index(
                condition=models.Q(("status", "pending")),
                fields=["created_at"],
                name="orders_order_pending_idx",
            ),
        ),
        AddIndexConcurrently(
            model_name="idempotencykey",
            index=models.Index(
                condition=models.Q(("status", "completed")),
                fields=["updated_at"],
                name="orders_idem_key_completed_idx",
            ),
        ),
    ]
