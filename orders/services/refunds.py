"""Giving a captured charge back, so that a crash can neither lose nor double it.

    1. refund_owe      in the transaction that decides it (a cancel, a
                       checkout that expired after its capture): a
                       refund_pending payment row, committed with the decision
    2. payment_refund  after that commit, outside any transaction: the
                       gateway's refund, then the row marked refunded with
                       the gateway's id for it, or refund_failed if the
                       gateway refused it

A crash after 1 leaves the row pending, and recovery calls payment_refund
again (orders/services/orders.py:checkout_recover). The gateway refunds at
most once per reference, so repeating step 2 after a crash between the
gateway's answer and the row's update returns the first refund instead of
making a second; the one-refund-per-order constraint keeps step 1 single.

A refusal is an answer, not an outage: the gateway has nothing captured
under the order's reference to give back, or less than is owed. Asking
again changes nothing, so the row becomes refund_failed, final, and staff
settle it by hand (orders/admin.py lists it; the log says which order).
"""

import logging
from decimal import Decimal

from django.db import connection

from orders import payments
from orders.models import Order, Payment
from shop.db_context import customer_transaction, job_transaction
from shop.sql_files import read_sql

log = logging.getLogger(__name__)


def refund_owe(*, order_id: int, amount: Decimal) -> None:
    """Record, in the caller's transaction, that the order's charge must be refunded."""
    with connection.cursor() as cursor:
        cursor.execute(
            read_sql("orders/sql/queries/refund_owe_v02.sql"),
            {"order_id": order_id, "amount": amount},
        )


def payment_refund(
    *, order_id: int, customer_id: int | None = None, job: str | None = None
) -> bool:
    """Make the refund owed on the order through the gateway and record it.

    Acts for `customer_id`, or as the background `job`. Returns whether a
    refund was recorded; False when none was owed, when the gateway did not
    answer (the row stays pending and recovery tries again), or when it
    refused (the row becomes refund_failed).
    """
    if (customer_id is None) == (job is None):
        raise ValueError("payment_refund acts for a customer or as a job: name one")

    def acting():
        if job is not None:
            return job_transaction(job)
        return customer_transaction(customer_id)

    with acting():
        owed = (
            Payment.objects.filter(
                order_id=order_id, status=Payment.Status.REFUND_PENDING
            )
            .values_list("pk", "amount")
            .first()
        )
        reference = (
            Order.objects.filter(pk=order_id)
            .values_list("payment_reference", flat=True)
            .first()
        )
    if owed is None:
        return False
    payment_id, amount = owed
    # Outside any transaction, and without a pooled connection: the
    # gateway's answer may take seconds (orders/payments.py hands the
    # connection back to the pool for the call).
    try:
        refund = payments.refund(reference=reference, amount=amount)
    except payments.NO_ANSWER:
        # The same silences a charge can meet (orders/payments.py:NO_ANSWER).
        # Whoever called this has committed the refund as owed (a cancel,
        # recovery): the row stays pending, and recovery asks again, so the
        # caller's answer stands, never a 500 after its COMMIT.
        log.warning(
            "refund of order %s got no answer; recovery retries it",
            order_id,
            exc_info=True,
        )
        return False
    except payments.GatewayRefused as refused:
        log.error(
            "the gateway refused the refund of %s owed on order %s (%s): marked "
            "refund_failed, for staff to settle by hand",
            amount,
            order_id,
            refused,
        )
        with acting():
            Payment.objects.filter(
                pk=payment_id, status=Payment.Status.REFUND_PENDING
            ).update(status=Payment.Status.REFUND_FAILED)
        return False
    with acting():
        recorded = Payment.objects.filter(
            pk=payment_id, status=Payment.Status.REFUND_PENDING
        ).update(status=Payment.Status.REFUNDED, gateway_reference=refund.reference)
    return bool(recorded)
