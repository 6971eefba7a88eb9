"""Order life after checkout: cancel, and recovery of interrupted checkouts."""

import logging
from datetime import timedelta

from django.db import OperationalError, connection
from django.db.models import Exists, OuterRef, Q
from django.utils import timezone

from orders import locks, payments
from orders.models import IdempotencyKey, Order, Payment, payment_reference
from orders.services import idempotency
from orders.services.refunds import payment_refund, refund_owe
from orders.services.settle import ChargeOutcome, order_settle, payment_record
from orders.services.stock import restock_lines
from shop.db_context import customer_transaction, job_transaction, set_locals
from shop.db_retry import BUSY_SQLSTATES, retry_on_conflict, sqlstate
from shop.errors import Conflict, NotFound
from shop.sql_files import read_sql

log = logging.getLogger(__name__)

# Far longer than any gateway call: a checkout this old is not coming back,
# and a gateway that has no charge for it now will not make one.
STALE_CHECKOUT_AFTER = timedelta(minutes=15)
# A checkout whose gateway answer is on file (or known to be lost) and whose
# phase 3 has not run for this long lost its request: a crash, a timeout,
# or every retry of a busy stock row failed. Recovery takes over.
CAPTURED_UNSETTLED_AFTER = timedelta(minutes=1)
# For this long after a release, recovery still asks the gateway about a
# charge whose outcome was in doubt: a capture that arrived after the order
# was released (a charge still in flight when recovery asked) is found and
# refunded. A real shop also reconciles with the gateway's daily report.
RECONCILE_RELEASED_FOR = timedelta(days=1)
# Recovery acts as a background job, not as staff: row-level security lets
# a job see orders, payments, keys and carts, and nothing else (chapter 22).
RECOVERY_JOB = "checkout_recover"


def order_cancel(*, customer_id: int, order_id: int) -> Order:
    """Cancel a paid order, put its units back on hand and refund the charge.

    The cancel and the promise of a refund (a refund_pending payment row)
    commit together; the gateway's refund follows outside any transaction,
    and recovery retries it if the gateway does not answer. A retried cancel
    finds the order cancelled and refunds nothing a second time.
    """

    def cancel() -> Order:
        with customer_transaction(customer_id):
            order = locks.order_lock(order_id=order_id)
            if order is None or order.customer_id != customer_id:
                raise NotFound("This order does not exist.")
            if order.status != Order.Status.PAID:
                raise Conflict(
                    f"A {order.status} order cannot be cancelled; "
                    "only paid orders can.",
                    code="not_cancellable",
                )
            set_locals({"app.order_id": str(order.pk), "app.stock_reason": "cancel"})
            restock_lines(list(order.lines.order_by("variant_id")))
            refund_owe(order_id=order.pk, amount=order.total)
            now = timezone.now()
            Order.objects.filter(pk=order.pk).update(
                status=Order.Status.CANCELLED, cancelled_at=now
            )
            order.status, order.cancelled_at = Order.Status.CANCELLED, now
            return order

    order = retry_on_conflict(cancel)
    payment_refund(order_id=order.pk, customer_id=customer_id)
    return order


def checkout_recover(
    *,
    older_than: timedelta = STALE_CHECKOUT_AFTER,
    captured_after: timedelta = CAPTURED_UNSETTLED_AFTER,
    batch_size=100,
) -> int:
    """Finish or release checkouts interrupted between phases; return how many.

    In this order, each step in short transactions of its own and every
    gateway call outside any transaction:

    1. ask the gateway, by the order's reference, about pending orders
       whose charge has no answer on file or an unknown one, and write the
       answer down (a "not found" only once the checkout is stale);
    2. finish the orders whose charge was captured (sold, paid, the key
       given its 201), since the customer has paid;
    3. release the stale orders whose charge is on file as not captured,
       with the PL/pgSQL procedure orders_release_stale_reservations; it
       commits after each batch, and a procedure that COMMITs must be
       CALLed outside a transaction block, hence autocommit here;
    4. free the keys of released checkouts, so a retry starts afresh;
    5. ask again about recently released orders whose charge was in doubt,
       and owe a refund for any capture found;
    6. make the refunds still owed.
    """
    if connection.in_atomic_block:
        raise RuntimeError(
            "checkout_recover commits per batch: call it outside atomic()."
        )
    _ask_gateway(older_than=older_than, asked_after=captured_after)
    finished = _finish_captured(older_than=captured_after)
    with connection.cursor() as cursor:
        cursor.execute(
            read_sql("orders/sql/queries/release_stale_call_v01.sql"),
            [older_than, batch_size],
        )
        (released,) = cursor.fetchone()
    # Forget the keys of released (or never-placed) checkouts so that the
    # client's retry with the same key starts a fresh checkout.
    cutoff = timezone.now() - older_than
    with job_transaction(RECOVERY_JOB):
        IdempotencyKey.objects.filter(
            status=IdempotencyKey.Status.IN_PROGRESS, created_at__lt=cutoff
        ).filter(Q(order__isnull=True) | Q(order__status=Order.Status.FAILED)).delete()
    _reconcile_released()
    _refund_owed(older_than=captured_after)
    return finished + released


def _ask_gateway(*, older_than: timedelta, asked_after: timedelta) -> None:
    now = timezone.now()
    stale = now - older_than
    # An answer on file is final; none, or an unknown one, is asked about.
    answered = Payment.objects.filter(
        status__in=[
            Payment.Status.CAPTURED,
            Payment.Status.DECLINED,
            Payment.Status.NOT_CAPTURED,
        ]
    )
    with job_transaction(RECOVERY_JOB):
        orders = list(
            Order.objects.filter(
                ~Exists(answered.filter(order=OuterRef("pk"))),
                status=Order.Status.PENDING,
                created_at__lt=now - asked_after,
            ).values_list("id", "total", "created_at")
        )
    for order_id, total, created_at in orders:
        outcome = _lookup(order_id)
        if outcome is None:
            continue
        if outcome.status == Payment.Status.NOT_CAPTURED and created_at >= stale:
            # Not yet: the checkout's own call may still be on its way to
            # the gateway. Only a stale checkout's "not found" is final.
            continue
        _record(order_id, total, outcome)


def _lookup(order_id: int) -> ChargeOutcome | None:
    """The gateway's answer for the order's charge, or None if it gave none."""
    try:
        found = payments.charge_status(reference=payment_reference(order_id))
    except payments.GatewayError:
        log.warning("the gateway did not answer about order %s; next run", order_id)
        return None
    status = {
        payments.ChargeStatus.CAPTURED: Payment.Status.CAPTURED,
        payments.ChargeStatus.DECLINED: Payment.Status.DECLINED,
        payments.ChargeStatus.NOT_FOUND: Payment.Status.NOT_CAPTURED,
    }[found.status]
    return ChargeOutcome(status, found.reference)


def _record(order_id: int, total, outcome: ChargeOutcome) -> bool:
    """Write the gateway's answer down; False if the order stayed busy."""

    def record():
        with job_transaction(RECOVERY_JOB, lock_timeout="5s"):
            payment_record(order_id=order_id, amount=total, outcome=outcome)

    try:
        retry_on_conflict(record, retry_on=BUSY_SQLSTATES, attempts=3)
    except OperationalError as exc:
        if sqlstate(exc) not in BUSY_SQLSTATES:
            raise
        # A live request holds the order: it writes its own answer, and
        # the next run asks again if it does not.
        log.warning("order %s stayed locked; recovery asks again next run", order_id)
        return False
    return True


def _finish_captured(*, older_than: timedelta) -> int:
    cutoff = timezone.now() - older_than
    with job_transaction(RECOVERY_JOB):
        order_ids = list(
            Order.objects.filter(
                status=Order.Status.PENDING,
                created_at__lt=cutoff,
                payments__status=Payment.Status.CAPTURED,
            )
            .values_list("id", flat=True)
            .distinct()
        )
    return sum(
        retry_on_conflict(lambda order_id=order_id: _finish_one(order_id))
        for order_id in order_ids
    )


def _finish_one(order_id: int) -> int:
    with job_transaction(RECOVERY_JOB, lock_timeout="5s"):
        # SKIP LOCKED: a live phase 3 holding the order finishes it itself.
        order = locks.order_lock(order_id=order_id, skip_locked=True)
        if order is None or order.status != Order.Status.PENDING:
            return 0
        status, body = order_settle(order, approved=True)
        # In progress: never answered, or answered `payment_pending` for now.
        key = IdempotencyKey.objects.filter(
            order_id=order_id, status=IdempotencyKey.Status.IN_PROGRESS
        ).first()
        if key is not None:
            idempotency.complete(
                customer_id=order.customer_id, key_id=key.pk, status=status, body=body
            )
    return 1


def _reconcile_released() -> None:
    """Find captures that reached the gateway after their order was released."""
    since = timezone.now() - RECONCILE_RELEASED_FOR
    with job_transaction(RECOVERY_JOB):
        orders = list(
            Order.objects.filter(
                status=Order.Status.FAILED,
                created_at__gte=since,
                payments__status__in=[
                    Payment.Status.UNKNOWN,
                    Payment.Status.NOT_CAPTURED,
                ],
            ).values_list("id", "total")
        )
    for order_id, total in orders:
        outcome = _lookup(order_id)
        captured = outcome is not None and outcome.status == Payment.Status.CAPTURED
        # payment_record owes the refund, since the order is failed.
        if captured and _record(order_id, total, outcome):
            payment_refund(order_id=order_id, job=RECOVERY_JOB)


def _refund_owed(*, older_than: timedelta) -> None:
    # Younger refunds are still being made by the request that owed them.
    cutoff = timezone.now() - older_than
    with job_transaction(RECOVERY_JOB):
        order_ids = list(
            Payment.objects.filter(
                status=Payment.Status.REFUND_PENDING, created_at__lt=cutoff
            ).values_list("order_id", flat=True)
        )
    for order_id in order_ids:
        payment_refund(order_id=order_id, job=RECOVERY_JOB)
