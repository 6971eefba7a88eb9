import django.contrib.postgres.functions
from django.db import migrations, models

import orders.models
from shop.sql_files import read_sql, sql_file

PROCEDURES = "orders/sql/procedures"
CHARGE_STATUSES = ["unknown", "not_captured", "declined", "captured"]
REFUND_STATUSES = ["refund_pending", "refunded", "refund_failed"]


class Migration(migrations.Migration):
    """Payments with unknown outcomes and refunds, and the fake gateway's ledger.

    A charge the gateway may or may not have captured, a refund owed, made
    or refused; one of each per order; a random reference per order at the
    gateway; when recovery last asked the gateway and how often; the
    indexes recovery and the key purge read; and the release procedure
    (v03) that releases only orders the gateway answered for.

    No data is backfilled. This migration exists only in a history that
    shop/management/commands/migrate.py makes every older database rebuild
    (it refuses them), and the seed runs after `migrate`: every database
    that applies it has empty orders and payments tables. For the same
    reason the indexes are built in the migration's transaction, not
    CONCURRENTLY: on an empty table the build is instant, and a write
    blocked meanwhile has nothing to wait for.
    """

    dependencies = [("orders", "0007_release_stale_job_context")]

    operations = [
        # Swapped in one transaction: there is no moment without a check.
        migrations.RemoveConstraint(
            model_name="payment", name="orders_payment_status_valid"
        ),
        migrations.AddConstraint(
            model_name="payment",
            constraint=models.CheckConstraint(
                condition=models.Q(("status__in", CHARGE_STATUSES + REFUND_STATUSES)),
                name="orders_payment_status_valid",
            ),
        ),
        migrations.AddConstraint(
            model_name="payment",
            constraint=models.UniqueConstraint(
                condition=models.Q(("status__in", CHARGE_STATUSES)),
                fields=("order",),
                name="orders_payment_one_charge_per_order",
            ),
        ),
        migrations.AddConstraint(
            model_name="payment",
            constraint=models.UniqueConstraint(
                condition=models.Q(("status__in", REFUND_STATUSES)),
                fields=("order",),
                name="orders_payment_one_refund_per_order",
            ),
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
        migrations.AddIndex(
            model_name="payment",
            index=models.Index(
                condition=models.Q(("status", "refund_pending")),
                fields=["created_at"],
                name="orders_payment_refund_due_idx",
            ),
        ),
        # The database's default draws a reference for rows written by raw
        # SQL (the labs); Django draws its own for the rows it creates.
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
        migrations.AddIndex(
            model_name="order",
            index=models.Index(
                condition=models.Q(("status", "pending")),
                fields=["created_at"],
                name="orders_order_pending_idx",
            ),
        ),
        migrations.AddIndex(
            model_name="idempotencykey",
            index=models.Index(
                condition=models.Q(("status", "completed")),
                fields=["updated_at"],
                name="orders_idem_key_completed_idx",
            ),
        ),
        # The fake gateway's own table (orders/payments.py); no model, since
        # the shop's code never reads it.
        sql_file("orders/sql/fake_gateway/ledger_v01.sql"),
        # Replaced, not altered: a procedure's body is one string.
        migrations.RunSQL(
            sql=[
                read_sql(f"{PROCEDURES}/release_stale_reservations_v02_reverse.sql"),
                read_sql(f"{PROCEDURES}/release_stale_reservations_v03.sql"),
            ],
            reverse_sql=[
                read_sql(f"{PROCEDURES}/release_stale_reservations_v03_reverse.sql"),
                read_sql(f"{PROCEDURES}/release_stale_reservations_v02.sql"),
            ],
        ),
    ]
