from django.db import migrations, models

from shop.sql_files import read_sql, sql_file

PROCEDURES = "orders/sql/procedures"


class Migration(migrations.Migration):
    """Payments with unknown outcomes and refunds, and the fake gateway's ledger."""

    dependencies = [("orders", "0007_release_stale_job_context")]

    operations = [
        # Swapped in one transaction: there is no moment without a check.
        migrations.RemoveConstraint(
            model_name="payment", name="orders_payment_status_valid"
        ),
        migrations.AddConstraint(
            model_name="payment",
            constraint=models.CheckConstraint(
                condition=models.Q(
                    (
                        "status__in",
                        [
                            "unknown",
                            "not_captured",
                            "declined",
                            "captured",
                            "refund_pending",
                            "refunded",
                        ],
                    )
                ),
                name="orders_payment_status_valid",
            ),
        ),
        # The fake gateway's own table (orders/payments.py); no model, since
        # the shop's code never reads it.
        sql_file("orders/sql/fake_gateway/ledger_v01.sql"),
        # Replaced, not altered: a procedure's body is one string. v03
        # releases only orders whose charge is known not to be captured.
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
