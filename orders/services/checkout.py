"""Checkout in three phases, so that no lock is held while the gateway answers.

    phase 1  one transaction: lock the cart, lock the stock rows in a fixed
             order, reserve, create the pending order and its lines, redeem
             the coupon in a savepoint, link the idempotency key
    phase 2  no transaction: charge the payment gateway
    phase 3  one transaction: paid (reservation becomes a sale) or failed
             (reservation released), and the response stored with the key

A crash between phases leaves a pending order holding reserved stock; the
`checkout_recover` command (or the procedure orders_release_stale_reservations)
releases it. See docs/chapters/10-transactions.md.
"""

from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal

from django.db import IntegrityError, connection, transaction
from django.db.models import F, Q
from django.utils import timezone

from orders import locks, payments
from orders.models import CartItem, Coupon, CouponRedemption, Order, OrderLine, Payment
from orders.services import idempotency
from orders.services.stock import apply_deltas, release_lines, sell_lines
from shop.db_context import customer_transaction, set_locals
from shop.db_retry import retry_on_conflict
from shop.errors import ShopError
from shop.sql_files import read_sql

CENT = Decimal("0.01")


@dataclass(frozen=True)
class ShippingAddress:
    line1: str
    city: str
    postal_code: str
    country: str
    line2: str = ""


@dataclass(frozen=True)
class CheckoutResult:
    status: int
    body: dict


class CheckoutRejected(ShopError):
    """A business outcome that ends the checkout; stored with the key."""


def order_body(order: Order, lines, coupon_note: str | None = None) -> dict:
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


def checkout(
    *,
    customer_id: int,
    key: str,
    address: ShippingAddress,
    payment_token: str,
    coupon_code: str | None,
    fingerprint: str,
) -> CheckoutResult:
    """Place an order from the customer's cart and pay for it, at most once per key."""
    claim = idempotency.claim(customer_id=customer_id, key=key, fingerprint=fingerprint)
    if claim.replay is not None:
        return CheckoutResult(claim.replay.status, claim.replay.body)
    try:
        placed = retry_on_conflict(
            lambda: _reserve(customer_id, claim.key_id, address, coupon_code)
        )
    except CheckoutRejected as rejection:
        body = {
            "code": rejection.code,
            "detail": str(rejection.detail),
            **rejection.extra,
        }
        idempotency.complete(
            customer_id=customer_id,
            key_id=claim.key_id,
            status=rejection.status_code,
            body=body,
        )
        return CheckoutResult(rejection.status_code, body)
    except BaseException:
        # Unexpected: nothing was stored, so free the key for a retry.
        idempotency.release(customer_id=customer_id, key_id=claim.key_id)
        raise

    # Phase 2: outside any transaction; charge() refuses to run inside one.
    result = payments.charge(
        token=payment_token,
        amount=placed.order.total,
        reference=f"order-{placed.order.pk}",
    )
    return retry_on_conflict(lambda: _settle(customer_id, claim.key_id, placed, result))


@dataclass
class _Placed:
    order: Order
    lines: list
    coupon_note: str | None


def _reserve(customer_id, key_id, address, coupon_code) -> _Placed:
    """Phase 1."""
    with customer_transaction(customer_id):
        cart = locks.cart_lock(customer_id=customer_id)
        items = (
            list(
                CartItem.objects.filter(cart=cart)
                .select_related("variant__product")
                .order_by("variant_id")
            )
            if cart
            else []
        )
        if not items:
            raise CheckoutRejected("The cart is empty.", code="cart_empty")
        levels = locks.stock_levels_lock(variant_ids=[i.variant_id for i in items])
        allocation, short = _allocate(items, levels)
        if short:
            raise CheckoutRejected(
                f"Not enough stock for: {', '.join(short)}.",
                code="insufficient_stock",
                status_code=409,
                extra={"skus": short},
            )
        subtotal = sum((i.variant.price * i.quantity for i in items), Decimal("0"))
        order = Order.objects.create(
            customer_id=customer_id,
            subtotal=subtotal,
            total=subtotal,
            ship_line1=address.line1,
            ship_line2=address.line2,
            ship_city=address.city,
            ship_postal_code=address.postal_code,
            ship_country=address.country,
        )
        lines = OrderLine.objects.bulk_create(
            [
                OrderLine(
                    order=order,
                    variant=item.variant,
                    warehouse_id=allocation[item.pk].warehouse_id,
                    sku=item.variant.sku,
                    product_name=item.variant.product.name,
                    unit_price=item.variant.price,
                    quantity=item.quantity,
                )
                for item in items
            ]
        )
        set_locals({"app.order_id": str(order.pk), "app.stock_reason": "reserve"})
        # The rows are locked and were checked above; if a bug ever reserved
        # too much anyway, the CHECK (reserved <= quantity_on_hand) refuses.
        apply_deltas({allocation[i.pk].pk: (0, i.quantity) for i in items})
        coupon_note = None
        if coupon_code:
            coupon_note = _redeem_coupon(order, customer_id, coupon_code)
        idempotency.link_order(key_id=key_id, order_id=order.pk)
    return _Placed(order=order, lines=lines, coupon_note=coupon_note)


def _allocate(items, levels):
    """Pick one stock row per cart line that can serve it, default warehouse first."""
    by_variant = {}
    for level in levels:
        by_variant.setdefault(level.variant_id, []).append(level)
    allocation, short = {}, []
    for item in items:
        candidates = sorted(
            by_variant.get(item.variant_id, []),
            key=lambda level: (not level.warehouse.is_default, -level.available),
        )
        chosen = next((lv for lv in candidates if lv.available >= item.quantity), None)
        if chosen is None:
            short.append(item.variant.sku)
        else:
            allocation[item.pk] = chosen
    return allocation, sorted(short)


class _CouponRejected(Exception):
    pass


def _redeem_coupon(order, customer_id, code) -> str | None:
    """Apply a coupon inside a savepoint; a bad coupon undoes only this step."""
    try:
        with transaction.atomic():  # a savepoint inside phase 1
            now = timezone.now()
            # The limit is checked by the UPDATE itself, under the row lock:
            # two checkouts racing for the last use cannot both pass.
            used = (
                Coupon.objects.filter(
                    code=code.upper(),
                    is_active=True,
                    valid_from__lte=now,
                    valid_until__gt=now,
                )
                .filter(
                    Q(usage_limit__isnull=True) | Q(times_used__lt=F("usage_limit"))
                )
                .update(times_used=F("times_used") + 1)
            )
            if used == 0:
                raise _CouponRejected("The coupon is unknown, expired or used up.")
            coupon = Coupon.objects.get(code=code.upper())
            CouponRedemption.objects.create(
                coupon=coupon, order=order, customer_id=customer_id
            )
            discount = (order.subtotal * coupon.percent_off / 100).quantize(
                CENT, rounding=ROUND_HALF_UP
            )
            Order.objects.filter(pk=order.pk).update(
                coupon=coupon, discount=discount, total=F("subtotal") - discount
            )
            order.coupon, order.discount = coupon, discount
            order.total = order.subtotal - discount
    except _CouponRejected as exc:
        return str(exc)
    except IntegrityError:
        return "This coupon was already used by this customer."
    return None


def _settle(customer_id, key_id, placed: _Placed, result) -> CheckoutResult:
    """Phase 3."""
    with customer_transaction(customer_id):
        order = locks.order_lock(order_id=placed.order.pk)
        lines = list(order.lines.order_by("variant_id"))
        if order.status != Order.Status.PENDING:
            # The stale-checkout recovery released this order while the
            # gateway was answering; the charge must be refunded (by hand
            # with this fake gateway), and the client is told so.
            body = {
                "code": "checkout_expired",
                "detail": "The checkout took too long and was released; try again.",
            }
            idempotency.complete(
                customer_id=customer_id, key_id=key_id, status=409, body=body
            )
            return CheckoutResult(409, body)
        if result.approved:
            set_locals({"app.order_id": str(order.pk), "app.stock_reason": "sale"})
            sell_lines(lines)
            Payment.objects.create(
                order=order,
                amount=order.total,
                status=Payment.Status.CAPTURED,
                gateway_reference=result.reference,
            )
            Order.objects.filter(pk=order.pk).update(
                status=Order.Status.PAID, paid_at=timezone.now()
            )
            order.status = Order.Status.PAID
            _cart_consume(customer_id, lines)
            status, body = 201, order_body(order, lines, placed.coupon_note)
        else:
            set_locals({"app.order_id": str(order.pk), "app.stock_reason": "release"})
            release_lines(lines)
            Payment.objects.create(
                order=order,
                amount=order.total,
                status=Payment.Status.DECLINED,
                gateway_reference=result.reference,
            )
            _return_coupon(order)
            Order.objects.filter(pk=order.pk).update(status=Order.Status.FAILED)
            status = 402
            body = {
                "code": "payment_declined",
                "detail": "The payment was declined; the reserved stock was released.",
                "order_id": order.pk,
            }
        idempotency.complete(
            customer_id=customer_id, key_id=key_id, status=status, body=body
        )
    return CheckoutResult(status, body)


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
