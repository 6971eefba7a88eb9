from django.db import migrations, models

from shop.sql_files import read_sql

INDEXES = "orders/sql/indexes"


def run(name):
    """RunSQL of one file, undone by the file with the same name + _reverse."""
    return migrations.RunSQL(
        sql=read_sql(f"{INDEXES}/{name}.sql"),
        reverse_sql=read_sql(f"{INDEXES}/{name}_reverse.sql"),
    )


class Migration(migrations.Migration):
    """The one-refund-per-order index counts refund_failed rows too.

    Not atomic: the new index is built CONCURRENTLY, beside the old one,
    which is then dropped CONCURRENTLY; each statement is an operation of
    its own, because CONCURRENTLY refuses to run in a transaction block.
    Backwards, the steps undo in reverse: version 1 is rebuilt under its
    name before version 2 goes.
    """

    atomic = False

    dependencies = [("orders", "0010_payment_references_and_refund_failed")]

    operations = [
        migrations.SeparateDatabaseAndState(
            database_operations=[
                run("payment_one_refund_per_order_v02"),
                migrations.RunSQL(
                    sql=read_sql(
                        f"{INDEXES}/payment_one_refund_per_order_v01_reverse.sql"
                    ),
                    reverse_sql=read_sql(
                        f"{INDEXES}/payment_one_refund_per_order_v01.sql"
                    ),
                ),
                run("payment_one_refund_per_order_v02_rename"),
            ],
            state_operations=[
                migrations.RemoveConstraint(
                    model_name="payment", name="orders_payment_one_refund_per_order"
                ),
                migrations.AddConstraint(
                    model_name="payment",
                    constraint=models.UniqueConstraint(
                        condition=models.Q(
                            (
                                "status__in",
                                ["refund_pending", "refunded", "refund_failed"],
                            )
                        ),
                        fields=("order",),
                        name="orders_payment_one_refund_per_order",
                    ),
                ),
            ],
        ),
    ]
