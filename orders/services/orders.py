"""Order life after checkout: cancel, and recovery of interrupted checkouts."""

from datetime import timedelta

from django.db import connection
from django.db.models import Q
from django.utils import timezone

from orders.models import IdempotencyKey, Order, Payment
from orders.services.stock import restock_lines
from shop.db_context import customer_transaction, set_locals
from shop.db_retry import retry_on_conflict
from shop.errors import ShopError

# Far longer than any gateway call: a checkout this old is not coming back.
STALE_CHECKOUT_AFTER = timedelta(minutes=15)


def order_cancel(*, customer_id: int, order_id: int) -> Order:
    """Cancel a paid order and put its units back on hand, in one transaction."""

    def cancel() -> Order:
        with customer_transaction(customer_id):
            order = (
                Order.objects.select_for_update(of=("self",))
                .filter(pk=order_id, customer_id=customer_id)
                .first()
            )
            if order is None:
                raise ShopError(
                    "This order does not exist.", code="not_found", status_code=404
                )
            if order.status != Order.Status.PAID:
                raise ShopError(
                    f"A {order.status} order cannot be cancelled; "
                    "only paid orders can.",
                    code="not_cancellable",
                    status_code=409,
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
    *, older_than: timedelta = STALE_CHECKOUT_AFTER, batch_size=100
) -> int:
    """Release stock held by checkouts interrupted between phases; return how many.

    The work is the PL/pgSQL procedure orders_release_stale_reservations,
    which commits after each batch; a procedure that COMMITs must be CALLed
    outside a transaction block, hence autocommit here.
    """
    if connection.in_atomic_block:
        raise RuntimeError(
            "checkout_recover commits per batch: call it outside atomic()."
        )
    with connection.cursor() as cursor:
        cursor.execute(
            "CALL orders_release_stale_reservations(%s, %s, 0)",
            [older_than, batch_size],
        )
        (released,) = cursor.fetchone()
    # Forget the keys of released (or never-placed) checkouts so that the
    # client's retry with the same key starts a fresh checkout.
    cutoff = timezone.now() - older_than
    IdempotencyKey.objects.filter(
        status=IdempotencyKey.Status.IN_PROGRESS, created_at__lt=cutoff
    ).filter(Q(order__isnull=True) | Q(order__status=Order.Status.FAILED)).delete()
    return released
