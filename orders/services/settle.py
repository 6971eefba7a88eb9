"""Finishing a pending order once the gateway has answered.

Shared by checkout's phase 3 and by recovery, which finishes orders whose
charge was captured but whose phase 3 never completed. Callers hold the
order's row lock (orders/locks.py:order_lock) inside their transaction.
"""

from dataclasses import dataclass
from decimal import Decimal
from http import HTTPStatus

from django.db import connection
from django.db.models import F
from django.utils import timezone

from orders import locks
from orders.models import Coupon, CouponRedemption, Order
from orders.services.refunds import refund_owe
from orders.services.stock import release_lines, sell_lines
from shop.db_context import set_locals
from shop.errors import PaymentFailed, error_status_and_body
from shop.sql_files import read_sql

# The status checkout stores with its key for a placed order. Errors take
# theirs from shop/errors.py's one mapping, through error_status_and_body.
ORDER_PLACED = HTTPStatus.CREATED.value


@dataclass(frozen=True)
class ChargeOutcome:
    """What is known of an order's charge: a Payment.Status of the charge kind."""

    status: str
    gateway_reference: str = ""


def payment_record(*, order_id: int, amount: Decimal, outcome: ChargeOutcome) -> None:
    """Write down what is known of the order's charge, in the caller's transaction.

    The order is locked first, in the shop's one lock order (order, then
    stock), so that a release cannot slip between reading its status and
    writing the charge: a capture that lands on an order already released
    is recorded together with the refund it is owed, and is never left
    captured on a failed order with nobody to give the money back.
    """
    order = locks.order_lock(order_id=order_id)
    with connection.cursor() as cursor:
        cursor.execute(
            read_sql("orders/sql/queries/payment_charge_record_v01.sql"),
            {
                "order_id": order_id,
                "amount": amount,
                "status": outcome.status,
                "gateway_reference": outcome.gateway_reference,
            },
        )
    if outcome.status == "captured" and order.status == Order.Status.FAILED:
        refund_owe(order_id=order_id, amount=amount)


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
        return ORDER_PLACED, order_body(order, lines, note)
    set_locals({"app.order_id": str(order.pk), "app.stock_reason": "release"})
    release_lines(lines)
    _return_coupon(order)
    Order.objects.filter(pk=order.pk).update(status=Order.Status.FAILED)
    return error_status_and_body(
        PaymentFailed(
            "The payment was declined; the reserved stock was released.",
            code="payment_declined",
            order_id=order.pk,
        )
    )


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
