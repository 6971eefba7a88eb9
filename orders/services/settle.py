"""Finishing a pending order once the gateway has answered.

Shared by checkout's phase 3 and by recovery, which finishes orders whose
charge was captured but whose phase 3 never completed. Callers hold the
order's row lock (orders/locks.py:order_lock) inside their transaction.

Outcomes, not responses: a placed order is its body, a refusal is an
ApplicationError *returned*, not raised, because the transaction that
released the order must still commit. shop/errors.py alone turns either
into a status, when checkout stores the answer with its key.
"""

from dataclasses import dataclass
from decimal import Decimal

from django.db import connection
from django.db.models import F
from django.utils import timezone

from orders import locks
from orders.models import Coupon, CouponRedemption, Order, Payment
from orders.services.refunds import refund_owe
from orders.services.stock import release_lines, sell_lines
from shop.db_context import set_locals
from shop.errors import ApplicationError, PaymentFailed
from shop.sql_files import read_sql


@dataclass(frozen=True)
class ChargeOutcome:
    """What is known of an order's charge: a Payment.Status of the charge kind.

    `amount` is what the gateway says it captured, when the answer came from
    asking it (recovery); None means the order's total, which is what the
    shop asked the gateway to charge.
    """

    status: str
    gateway_reference: str = ""
    amount: Decimal | None = None


def payment_record(*, order_id: int, amount: Decimal, outcome: ChargeOutcome) -> None:
    """Write down what is known of the order's charge, in the caller's transaction.

    The order is locked first, in the shop's one lock order (order, then
    stock), so that a release cannot slip between reading its status and
    writing the charge: a capture that lands on an order already released
    is recorded together with the refund it is owed, and is never left
    captured on a failed order with nobody to give the money back.
    """
    order = locks.order_lock(order_id=order_id)
    charged = amount if outcome.amount is None else outcome.amount
    with connection.cursor() as cursor:
        cursor.execute(
            read_sql("orders/sql/queries/payment_charge_record_v02.sql"),
            {
                "order_id": order_id,
                "amount": charged,
                "status": outcome.status,
                "gateway_reference": outcome.gateway_reference,
            },
        )
    if (
        outcome.status == Payment.Status.CAPTURED
        and order.status == Order.Status.FAILED
    ):
        refund_owe(order_id=order_id, amount=charged)


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


def order_settle(
    order: Order, *, approved: bool, note: str | None = None
) -> dict | ApplicationError:
    """Sell (approved) or release (declined) a pending order.

    Returns the placed order's body, or the PaymentFailed the client is
    answered with; never raises it, since the release must commit.
    """
    lines = list(order.lines.order_by("variant_id"))
    if approved:
        set_locals({"app.order_id": str(order.pk), "app.stock_reason": "sale"})
        sell_lines(lines)
        Order.objects.filter(pk=order.pk).update(
            status=Order.Status.PAID, paid_at=timezone.now()
        )
        order.status = Order.Status.PAID
        _cart_consume(order.customer_id, lines)
        return order_body(order, lines, note)
    order_release(order, lines)
    return PaymentFailed(
        "The payment was declined; the reserved stock was released.",
        code="payment_declined",
        order_id=order.pk,
    )


def order_release(order: Order, lines=None) -> None:
    """Fail a pending order: its reserved units and its coupon use go back."""
    if lines is None:
        lines = list(order.lines.order_by("variant_id"))
    set_locals({"app.order_id": str(order.pk), "app.stock_reason": "release"})
    release_lines(lines)
    _return_coupon(order)
    Order.objects.filter(pk=order.pk).update(status=Order.Status.FAILED)
    order.status = Order.Status.FAILED


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
