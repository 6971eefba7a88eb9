import django.contrib.postgres.functions
from django.db import migrations, models

import orders.models
from shop.sql_files import read_sql, sql_file

PROCEDURES = "orders/sql/procedures"
STATUSES = [
    "unknown",
    "not_captured",
    "declined",
    "captured",
    "refund_pending",
    "refunded",
    "refund_failed",
]


class Migration(migrations.Migration):
    """A payment reference per order, refunds that can fail, asks that back off.

    The gateway knows each order by a random reference of its own instead of
    `order-<id>`; a refund the gateway refuses ends as refund_failed; the
    charge row keeps when recovery last asked the gateway and how often;
    the release procedure (v04) checks its batch again once it holds the
    locks; and the gateway's ledger learns of the money taken before it
    existed.
    """

    dependencies = [("orders", "0009_payment_and_key_indexes")]

    operations = [
        migrations.SeparateDatabaseAndState(
            database_operations=[
                sql_file("orders/sql/tables/order_payment_reference_v01.sql")
            ],
            state_operations=[
                migrations.AddField(
                    model_name="order",
                    name="payment_reference",
                    field=models.CharField(
                        db_default=django.contrib.postgres.functions.RandomUUID(),
                        default=orders.models.new_payment_reference,
                        editable=False,
                        max_length=64,
                    ),
                ),
                migrations.AddConstraint(
                    model_name="order",
                    constraint=models.UniqueConstraint(
                        fields=("payment_reference",),
                        name="orders_order_payment_reference_uniq",
                    ),
                ),
            ],
        ),
        migrations.AddField(
            model_name="payment",
            name="gateway_asked_at",
            field=models.DateTimeField(blank=True, null=True),
        ),
        migrations.AddField(
            model_name="payment",
            name="gateway_asks",
            field=models.IntegerField(db_default=0, default=0),
        ),
        migrations.AddConstraint(
            model_name="payment",
            constraint=models.CheckConstraint(
                condition=models.Q(("gateway_asks__gte", 0)),
                name="orders_payment_gateway_asks_non_negative",
            ),
        ),
        # Swapped in one transaction: there is no moment without a check.
        migrations.RemoveConstraint(
            model_name="payment", name="orders_payment_status_valid"
        ),
        migrations.AddConstraint(
            model_name="payment",
            constraint=models.CheckConstraint(
                condition=models.Q(("status__in", STATUSES)),
                name="orders_payment_status_valid",
            ),
        ),
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
        # After the references exist: the history is filed under them.
        sql_file("orders/sql/fake_gateway/ledger_history_v01.sql"),
    ]
