"""Order life after checkout: cancel, and recovery of interrupted checkouts."""

from datetime import timedelta

from django.db import connection
from django.db.models import Q
from django.utils import timezone

from orders import locks
from orders.models import IdempotencyKey, Order, Payment
from orders.services import idempotency
from orders.services.settle import order_settle
from orders.services.stock import restock_lines
from shop.db_context import customer_transaction, job_transaction, set_locals
from shop.db_retry import retry_on_conflict
from shop.errors import Conflict, NotFound
from shop.sql_files import read_sql

# Far longer than any gateway call: a checkout this old is not coming back.
STALE_CHECKOUT_AFTER = timedelta(minutes=15)
# A captured charge whose phase 3 has not run for this long lost its
# request (a crash, or every retry of a busy stock row failed).
CAPTURED_UNSETTLED_AFTER = timedelta(minutes=1)
# Recovery acts as a background job, not as staff: row-level security lets
# a job see orders, payments, keys and carts, and nothing else (chapter 22).
RECOVERY_JOB = "checkout_recover"


def order_cancel(*, customer_id: int, order_id: int) -> Order:
    """Cancel a paid order and put its units back on hand, in one transaction."""

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
            Payment.objects.create(
                order=order, amount=order.total, status=Payment.Status.REFUNDED
            )
            now = timezone.now()
            Order.objects.filter(pk=order.pk).update(
                status=Order.Status.CANCELLED, cancelled_at=now
            )
            order.status, order.cancelled_at = Order.Status.CANCELLED, now
            return order

    return retry_on_conflict(cancel)


def checkout_recover(
    *,
    older_than: timedelta = STALE_CHECKOUT_AFTER,
    captured_after: timedelta = CAPTURED_UNSETTLED_AFTER,
    batch_size=100,
) -> int:
    """Finish or release checkouts interrupted between phases; return how many.

    Orders whose charge was captured are finished (sold, paid, the key given
    its 201), since the customer has paid. The others are released by the
    PL/pgSQL procedure orders_release_stale_reservations, which commits
    after each batch; a procedure that COMMITs must be CALLed outside a
    transaction block, hence autocommit here.
    """
    if connection.in_atomic_block:
        raise RuntimeError(
            "checkout_recover commits per batch: call it outside atomic()."
        )
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
    return finished + released


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
        key = IdempotencyKey.objects.filter(
            order_id=order_id, status=IdempotencyKey.Status.IN_PROGRESS
        ).first()
        if key is not None:
            idempotency.complete(
                customer_id=order.customer_id, key_id=key.pk, status=status, body=body
            )
    return 1
