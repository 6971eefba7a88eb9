"""Finishing a pending order once the gateway has answered.

Shared by checkout's phase 3 and by recovery, which finishes orders whose
charge was captured but whose phase 3 never completed. Callers hold the
order's row lock (orders/locks.py:order_lock) inside their transaction.
"""

from django.db import connection
from django.db.models import F
from django.utils import timezone

from orders.models import Coupon, CouponRedemption, Order, Payment
from orders.payments import ChargeResult
from orders.services.stock import release_lines, sell_lines
from shop.db_context import customer_transaction, set_locals
from shop.sql_files import read_sql


def order_body(order: Order, lines, coupon_note: str | None = None) -> dict:
    """The checkout's 201 response, stored with the idempotency key."""
    body = {
        "id": order.pk,
        "status": order.status,
        "subtotal": str(order.subtotal),
        "discount": str(order.discount),
        "total": str(order.total),
        "lines": [
            {
                "sku": line.sku,
                "quantity": line.quantity,
                "unit_price": str(line.unit_price),
            }
            for line in lines
        ],
    }
    if coupon_note:
        body["coupon_rejected"] = coupon_note
    return body


def payment_record(order: Order, result: ChargeResult) -> Payment:
    """Write the gateway's answer down, before anything else can fail."""
    with customer_transaction(order.customer_id):
        return Payment.objects.create(
            order=order,
            amount=order.total,
            status=Payment.Status.CAPTURED
            if result.approved
            else Payment.Status.DECLINED,
            gateway_reference=result.reference,
        )


def order_settle(order: Order, *, approved: bool, note: str | None = None):
    """Sell (approved) or release (declined) a pending order; return (status, body)."""
    lines = list(order.lines.order_by("variant_id"))
    if approved:
        set_locals({"app.order_id": str(order.pk), "app.stock_reason": "sale"})
        sell_lines(lines)
        Order.objects.filter(pk=order.pk).update(
            status=Order.Status.PAID, paid_at=timezone.now()
        )
        order.status = Order.Status.PAID
        _cart_consume(order.customer_id, lines)
        return 201, order_body(order, lines, note)
    set_locals({"app.order_id": str(order.pk), "app.stock_reason": "release"})
    release_lines(lines)
    _return_coupon(order)
    Order.objects.filter(pk=order.pk).update(status=Order.Status.FAILED)
    return 402, {
        "code": "payment_declined",
        "detail": "The payment was declined; the reserved stock was released.",
        "order_id": order.pk,
    }


def _cart_consume(customer_id: int, lines) -> None:
    params = {
        "customer_id": customer_id,
        "variant_ids": [line.variant_id for line in lines],
        "quantities": [line.quantity for line in lines],
    }
    with connection.cursor() as cursor:
        cursor.execute(read_sql("orders/sql/queries/cart_consume_v01.sql"), params)


def _return_coupon(order: Order) -> None:
    if order.coupon_id is None:
        return
    CouponRedemption.objects.filter(order=order).delete()
    Coupon.objects.filter(pk=order.coupon_id).update(times_used=F("times_used") - 1)
