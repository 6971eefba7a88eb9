"""Finishing a pending order once the gateway has answered.

Shared by checkout's phase 3 and by recovery, which finishes orders whose
charge was captured but whose phase 3 never completed. Callers hold the
order's row lock (orders/locks.py:order_lock) inside their transaction.
Each step is a constant number of statements, whatever the number of lines.

Outcomes, not responses: a placed order is its body, a refusal is an
ApplicationError *returned*, not raised, because the transaction that
released the order must still commit. shop/errors.py alone turns either
into a status, when checkout stores the answer with its key.
"""

import json
from dataclasses import dataclass
from decimal import Decimal

from django.db import connection
from django.db.models import F

from orders import locks
from orders.models import Coupon, CouponRedemption, Order
from orders.services.stock import release_lines
from shop.db_context import Context
from shop.errors import ApplicationError, PaymentFailed, success_status
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


def payment_record(
    *,
    order_id: int,
    amount: Decimal,
    outcome: ChargeOutcome,
    context: Context | None = None,
) -> None:
    """Write down what is known of the order's charge, in one statement.

    The order is locked first, in the shop's one lock order (order, then
    stock), so that a release cannot slip between reading its status and
    writing the charge: a capture that lands on an order already released
    is recorded together with the refund it is owed, and is never left
    captured on a failed order with nobody to give the money back
    (payment_record_v01.sql). In the caller's transaction; or, given the
    `context` of customer_statement() (checkout's phase 2), alone in
    autocommit, a transaction of its own that also sets the context. There
    the answer is nearly always the order's first, and a cheaper statement
    writes that (payment_record_first_v01.sql); the full one runs only when
    it wrote nothing.
    """
    charged = amount if outcome.amount is None else outcome.amount
    params = {
        **(context or Context({})).params,
        "order_id": order_id,
        "amount": charged,
        "status": outcome.status,
        "gateway_reference": outcome.gateway_reference,
    }
    with connection.cursor() as cursor:
        if context is not None:
            cursor.execute(
                read_sql("orders/sql/queries/payment_record_first_v01.sql"), params
            )
            (written,) = cursor.fetchone()
            if written:
                return
        cursor.execute(read_sql("orders/sql/queries/payment_record_v01.sql"), params)


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
    order: Order, *, approved: bool, note: str | None = None, lines=None, levels=None
) -> dict | ApplicationError:
    """Sell (approved) or release (declined) a pending order.

    Returns the placed order's body, or the PaymentFailed the client is
    answered with; never raises it, since the release must commit. A sale
    also stores its body, the 201, with the order's idempotency key, in the
    statement that sells (order_sell_v01.sql); a release leaves the key to
    the caller. `lines`, the order's lines by variant id, are read when not
    given, and `levels`, their stock rows, locked when not given (checkout's
    phase 3 has both: lines never change, and it locked the rows first).
    """
    if lines is None:
        lines = list(order.lines.order_by("variant_id"))
    if approved:
        order.status = Order.Status.PAID
        body = order_body(order, lines, note)
        _order_sell(order, lines, levels, body)
        return body
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
    release_lines(lines)
    _return_coupon(order)
    Order.objects.filter(pk=order.pk).update(status=Order.Status.FAILED)
    order.status = Order.Status.FAILED


def _order_sell(order: Order, lines, levels, body: dict) -> None:
    """The sale in one statement (order_sell_v01.sql), after the stock rows'
    lock; a second statement only for cart lines that grew meanwhile."""
    if levels is None:
        levels = locks.stock_levels_lock(variant_ids=[ln.variant_id for ln in lines])
    level_id = {(lv.variant_id, lv.warehouse_id): lv.id for lv in levels}
    params = {
        "order_id": order.pk,
        "customer_id": order.customer_id,
        "stock_level_ids": [level_id[(ln.variant_id, ln.warehouse_id)] for ln in lines],
        "variant_ids": [line.variant_id for line in lines],
        "quantities": [line.quantity for line in lines],
        "response_status": success_status("created"),
        "response_body": json.dumps(body),
    }
    with connection.cursor() as cursor:
        cursor.execute(read_sql("orders/sql/queries/order_sell_v01.sql"), params)
        deleted, _ = cursor.fetchone()
        kept = [line for line in lines if line.variant_id not in set(deleted)]
        if kept:
            cursor.execute(
                read_sql("orders/sql/queries/cart_decrement_v01.sql"),
                {
                    "customer_id": order.customer_id,
                    "variant_ids": [line.variant_id for line in kept],
                    "quantities": [line.quantity for line in kept],
                },
            )


def _return_coupon(order: Order) -> None:
    if order.coupon_id is None:
        return
    CouponRedemption.objects.filter(order=order).delete()
    Coupon.objects.filter(pk=order.coupon_id).update(times_used=F("times_used") - 1)
