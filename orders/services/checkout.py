"""Checkout in three phases, so that no lock is held while the gateway answers.

    phase 1  one transaction: lock the cart, lock the stock rows in a fixed
             order, create the pending order, its lines and their
             reservations, link the idempotency key, redeem the coupon in
             a savepoint
    phase 2  no transaction: charge the payment gateway, then record its
             answer (a payment row) in a short transaction of its own
    phase 3  one transaction: paid (reservation becomes a sale) or failed
             (reservation released), and the response stored with the key

A gateway that does not answer (an error, a timeout) leaves the outcome
unknown: the money may have moved. That is never read as a decline: the
order stays pending with its stock reserved, the client is told so
(`payment_pending`), and recovery asks the gateway by the order's reference.

A crash between phases leaves a pending order holding reserved stock; the
`checkout_recover` command finishes it if its charge was captured and
releases it once the gateway says it was not. A capture that arrives for an
order already released is refunded (orders/services/refunds.py). See
docs/chapters/10-transactions.md.

A checkout sends the same few statements whatever the cart holds (13, BEGIN
and COMMIT included; tests/orders/test_checkout_api.py pins the number):
the key's claim is one autocommit statement; each transaction's first
statement also sets who is acting (shop/db_context.py, in_first_statement);
and the writes of many lines are one set-based statement each, in .sql
files under orders/sql/queries/. docs/benchmarks.md has the profile that
chose them.

checkout() returns an outcome, never an HTTP status: the placed order
(OrderPlaced), the ApplicationError that refused it (returned, since the
refusal was stored with the key, or a release committed with it), or the
Replay of the answer stored with the key. shop/errors.py alone maps an
outcome to a status, both for the response stored with the key and for the
one sent.
"""

import logging
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal

from django.db import IntegrityError, connection, transaction
from django.db.models import F, Q
from django.utils import timezone

from orders import locks, payments
from orders.models import Coupon, CouponRedemption, Order, OrderLine, Payment
from orders.services import refunds
from orders.services.idempotency import (
    Replay,
    idempotency_key_answer_provisionally,
    idempotency_key_claim,
    idempotency_key_complete,
    idempotency_key_reject,
    idempotency_key_release,
    idempotency_key_stored,
)
from orders.services.settle import (
    ChargeOutcome,
    order_body,
    order_settle,
    payment_record,
)
from shop.db_context import customer_statement, customer_transaction
from shop.db_retry import BUSY_SQLSTATES, retry_on_conflict
from shop.errors import (
    ApplicationError,
    Conflict,
    InvalidRequest,
    ServiceUnavailable,
    error_status_and_body,
    success_status,
)
from shop.outbox import outbox_kick
from shop.sql_files import read_sql

log = logging.getLogger(__name__)
CENT = Decimal("0.01")
# NUMERIC(12, 2): the largest amount an order (and a cart) can hold.
MAX_ORDER_TOTAL = Decimal("9999999999.99")
# Phase 3 runs after the money moved: it waits longer for locks, and a busy
# stock row is retried instead of failing the request.
SETTLE_LOCK_TIMEOUT = "5s"
SETTLE_ATTEMPTS = 4
# Refusals that mean "wait and retry", not an outcome of this key's
# checkout: the key is released instead of stored, so the same key works
# once the other checkout is done.
RETRY_LATER = {"checkout_in_progress"}


@dataclass(frozen=True)
class ShippingAddress:
    line1: str
    city: str
    postal_code: str
    country: str
    line2: str = ""


@dataclass(frozen=True)
class OrderPlaced:
    """Checkout's success: the placed order, as its 201 body shows it."""

    body: dict


# What a checkout comes to; see the module's docstring.
CheckoutOutcome = OrderPlaced | ApplicationError | Replay


def checkout(
    *,
    customer_id: int,
    key: str,
    address: ShippingAddress,
    payment_token: str,
    coupon_code: str | None,
    fingerprint: str,
) -> CheckoutOutcome:
    """Place an order from the customer's cart and pay for it, at most once per key."""
    claim = idempotency_key_claim(
        customer_id=customer_id, key=key, fingerprint=fingerprint
    )
    if claim.replay is not None:
        return claim.replay
    try:
        placed = retry_on_conflict(
            lambda: _reserve(customer_id, claim.key_id, address, coupon_code)
        )
    except ApplicationError as rejection:
        if rejection.code in RETRY_LATER:
            idempotency_key_release(customer_id=customer_id, key_id=claim.key_id)
        else:
            # A business outcome (empty cart, short stock): it ends this
            # key's checkout, so it is stored and replayed like a success.
            idempotency_key_reject(
                customer_id=customer_id, key_id=claim.key_id, rejection=rejection
            )
        return rejection
    except BaseException:
        # Unexpected: nothing was stored, so free the key for a retry.
        idempotency_key_release(customer_id=customer_id, key_id=claim.key_id)
        raise

    # Phase 2: outside any transaction; charge() refuses to run inside one,
    # and hands the pooled connection back to the pool while the gateway
    # answers (orders/payments.py). _record and _settle borrow a checked one.
    outcome = _charge(placed.order, payment_token)
    # The gateway's answer is written down at once, in a short transaction
    # that locks the order but no stock: whatever happens to phase 3, a
    # captured charge is never forgotten, and recovery finishes the order
    # instead of undoing it. An unknown outcome is written down too, so
    # recovery knows to ask.
    retry_on_conflict(
        lambda: _record(customer_id, placed.order, outcome),
        retry_on=BUSY_SQLSTATES,
        attempts=SETTLE_ATTEMPTS,
    )
    settled = retry_on_conflict(
        lambda: _settle(customer_id, claim.key_id, placed, outcome),
        retry_on=BUSY_SQLSTATES,
        attempts=SETTLE_ATTEMPTS,
    )
    if settled.refund_owed:
        # After phase 3's COMMIT, which wrote the refund down as owed: if the
        # gateway does not answer now, recovery makes it later.
        refunds.payment_refund(order_id=placed.order.pk, customer_id=customer_id)
    return settled.outcome


def _charge(order: Order, token: str) -> ChargeOutcome:
    try:
        result = payments.charge(
            token=token, amount=order.total, reference=order.payment_reference
        )
    except payments.GatewayRefused:
        # The gateway will not take this charge because the reference was
        # already charged another amount: something *was* captured under
        # it, by an earlier call, and this order's reference is its own. A
        # decline would release the order and strand that money. Unknown
        # keeps the order pending: recovery asks the gateway, learns the
        # amount it took, and, since it is not the order's total, releases
        # the order and refunds it (orders/services/orders.py:_finish_one).
        log.error(
            "the gateway refused the charge of order %s: its reference holds "
            "a charge of another amount; recovery will refund it",
            order.pk,
        )
        return ChargeOutcome(Payment.Status.UNKNOWN)
    except payments.NO_ANSWER:
        # No answer (orders/payments.py:NO_ANSWER): the charge may have gone
        # through, so this is not a decline: the order keeps its stock and
        # recovery asks the gateway by the order's reference. Anything else
        # is a bug in the shop, not an answer from the gateway: it
        # propagates, and recovery still settles the order.
        log.exception("payment gateway gave no answer for order %s", order.pk)
        return ChargeOutcome(Payment.Status.UNKNOWN)
    status = Payment.Status.CAPTURED if result.approved else Payment.Status.DECLINED
    return ChargeOutcome(status, result.reference)


def _record(customer_id: int, order: Order, outcome: ChargeOutcome) -> None:
    # One statement, alone in autocommit: its own short transaction. Its
    # commit need not wait for the disk: phase 3 commits synchronously right
    # after it, which flushes it too; and if a crash takes it before then,
    # the order is pending with no answer on file, which recovery asks the
    # gateway about (orders/services/orders.py:checkout_recover), the same
    # as when the process dies before this record.
    with customer_statement(
        customer_id, lock_timeout=SETTLE_LOCK_TIMEOUT, wait_for_disk=False
    ) as context:
        payment_record(
            order_id=order.pk, amount=order.total, outcome=outcome, context=context
        )


@dataclass
class _Placed:
    order: Order
    lines: list[OrderLine]  # by variant id, as phase 1 wrote them
    coupon_note: str | None


@dataclass(frozen=True)
class _CartLine:
    """A cart line as phase 1 reads it (checkout_cart_read_v01.sql)."""

    id: int
    variant_id: int
    quantity: int
    sku: str
    price: Decimal
    product_name: str
    on_sale: bool


def _reserve(customer_id, key_id, address, coupon_code) -> _Placed:
    """Phase 1."""
    with customer_transaction(customer_id, in_first_statement=True) as context:
        cart = locks.cart_lock(customer_id=customer_id, context=context)
        items, pending = _cart_read(customer_id, cart) if cart else ([], False)
        if not items:
            raise InvalidRequest("The cart is empty.", code="cart_empty")
        _refuse_unsellable(items, pending)
        levels = locks.stock_levels_lock(variant_ids=[i.variant_id for i in items])
        allocation, short = _allocate(items, levels)
        if short:
            raise Conflict(
                f"Not enough stock for: {', '.join(short)}.",
                code="insufficient_stock",
                skus=short,
            )
        subtotal = sum((i.price * i.quantity for i in items), Decimal("0"))
        if subtotal > MAX_ORDER_TOTAL:
            raise InvalidRequest(
                f"An order may total at most {MAX_ORDER_TOTAL}.",
                code="amount_too_large",
            )
        order = _order_place(customer_id, address, subtotal)
        lines = [
            OrderLine(
                order_id=order.pk,
                variant_id=item.variant_id,
                warehouse_id=allocation[item.id].warehouse_id,
                sku=item.sku,
                product_name=item.product_name,
                unit_price=item.price,
                quantity=item.quantity,
            )
            for item in items
        ]
        _lines_reserve(order, lines, allocation, items, key_id)
        coupon_note = None
        if coupon_code:
            coupon_note = _redeem_coupon(order, customer_id, coupon_code)
    return _Placed(order=order, lines=lines, coupon_note=coupon_note)


def _cart_read(customer_id, cart) -> tuple[list[_CartLine], bool]:
    """The cart's lines, and whether a checkout of this customer is pending."""
    with connection.cursor() as cursor:
        cursor.execute(
            read_sql("orders/sql/queries/checkout_cart_read_v01.sql"),
            {"customer_id": customer_id, "cart_id": cart.pk},
        )
        rows = cursor.fetchall()
    pending = bool(rows) and rows[0][-1]
    return [_CartLine(*row[:-1]) for row in rows], pending


def _order_place(customer_id, address, subtotal) -> Order:
    """Insert the pending order; return it as phase 2 and 3 read it."""
    with connection.cursor() as cursor:
        cursor.execute(
            read_sql("orders/sql/queries/order_place_v01.sql"),
            {
                "customer_id": customer_id,
                "subtotal": subtotal,
                "line1": address.line1,
                "line2": address.line2,
                "city": address.city,
                "postal_code": address.postal_code,
                "country": address.country,
            },
        )
        order_id, payment_reference, created_at = cursor.fetchone()
    # Every column, in the model's field order, as from_db() expects.
    row = {
        "id": order_id,
        "customer_id": customer_id,
        "status": Order.Status.PENDING,
        "subtotal": subtotal,
        "discount": Decimal("0.00"),
        "total": subtotal,
        "coupon_id": None,
        "ship_line1": address.line1,
        "ship_line2": address.line2,
        "ship_city": address.city,
        "ship_postal_code": address.postal_code,
        "ship_country": address.country,
        "created_at": created_at,
        "updated_at": created_at,
        "paid_at": None,
        "cancelled_at": None,
        "payment_reference": payment_reference,
    }
    return Order.from_db(connection.alias, list(row), list(row.values()))


def _lines_reserve(order, lines, allocation, items, key_id) -> None:
    """Write the lines, reserve their units and link the key: one statement."""
    with connection.cursor() as cursor:
        cursor.execute(
            read_sql("orders/sql/queries/order_lines_reserve_v01.sql"),
            {
                "order_id": order.pk,
                "key_id": key_id,
                "variant_ids": [line.variant_id for line in lines],
                "warehouse_ids": [line.warehouse_id for line in lines],
                "skus": [line.sku for line in lines],
                "product_names": [line.product_name for line in lines],
                "unit_prices": [line.unit_price for line in lines],
                "quantities": [line.quantity for line in lines],
                "stock_level_ids": [allocation[item.id].id for item in items],
            },
        )


def _refuse_unsellable(items, pending: bool) -> None:
    """Refuse what cannot be checked out now, under the cart's row lock."""
    # Another checkout of this cart is between its phases (a double click
    # sends a second key): its cart lines are not bought yet, and buying
    # them twice would charge twice. The cart lock makes this check exact.
    if pending:
        raise Conflict(
            "Another checkout of this cart is still being paid for; wait for its "
            "result before checking out again.",
            code="checkout_in_progress",
        )
    off_sale = sorted(i.sku for i in items if not i.on_sale)
    if off_sale:
        raise Conflict(
            f"No longer on sale: {', '.join(off_sale)}; remove them from the cart.",
            code="unavailable",
            skus=off_sale,
        )


def _allocate(items, levels):
    """Pick one stock row per cart line that can serve it, default warehouse first."""
    by_variant = {}
    for level in levels:
        by_variant.setdefault(level.variant_id, []).append(level)
    allocation, short = {}, []
    for item in items:
        candidates = sorted(
            by_variant.get(item.variant_id, []),
            key=lambda level: (not level.warehouse_is_default, -level.available),
        )
        chosen = next((lv for lv in candidates if lv.available >= item.quantity), None)
        if chosen is None:
            short.append(item.sku)
        else:
            allocation[item.id] = chosen
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


@dataclass(frozen=True)
class _Settled:
    outcome: CheckoutOutcome
    refund_owed: bool = False


def _settle(customer_id, key_id, placed: _Placed, outcome: ChargeOutcome) -> _Settled:
    """Phase 3."""
    captured = outcome.status == Payment.Status.CAPTURED
    refund_owed = False
    with customer_transaction(
        customer_id, lock_timeout=SETTLE_LOCK_TIMEOUT, in_first_statement=True
    ) as context:
        # Ships phase 1's events too: placed, reserved, then paid or failed.
        outbox_kick()
        # The order, then its stock rows, in one statement: phase 3's locks.
        order, levels = locks.order_and_stock_lock(
            order_id=placed.order.pk,
            variant_ids=[line.variant_id for line in placed.lines],
            context=context,
        )
        if order.status in (Order.Status.PAID, Order.Status.CANCELLED):
            # Recovery learnt of the capture first and finished the order,
            # and the customer may have cancelled it since: the checkout
            # placed it all the same, and recovery stored that answer.
            result = OrderPlaced(order_body(order, placed.lines, placed.coupon_note))
        elif order.status != Order.Status.PENDING:
            # Recovery released this order while the gateway was answering.
            # A capture that came too late is given back: owed here, in the
            # transaction that answers 409, and made after its COMMIT.
            if captured:
                refunds.refund_owe(order_id=order.pk, amount=order.total)
                refund_owed = True
            result = _expired(order, outcome)
        elif outcome.status == Payment.Status.UNKNOWN:
            # The order keeps its reservation until recovery has asked the
            # gateway; a retry with this key gets this answer meanwhile.
            pending = _payment_pending(order)
            status, body = error_status_and_body(pending)
            idempotency_key_answer_provisionally(
                key_id=key_id, status=status, body=body
            )
            return _Settled(pending)
        else:
            settled = order_settle(
                order,
                approved=captured,
                note=placed.coupon_note,
                lines=placed.lines,
                levels=levels,
            )
            if isinstance(settled, dict):
                # Sold, and its 201 stored with the key by the statement that
                # sold it: the order was pending, so the key was in progress.
                return _Settled(OrderPlaced(settled))
            result = settled
        status, body = _response_of(result)
        if not idempotency_key_complete(key_id=key_id, status=status, body=body):
            # Already answered (recovery finished the order first): every
            # answer to this key is the one stored with it.
            result = idempotency_key_stored(key_id=key_id) or result
    return _Settled(result, refund_owed=refund_owed)


def _response_of(result: OrderPlaced | ApplicationError) -> tuple[int, dict]:
    """The response stored with the key, its status from shop/errors.py."""
    if isinstance(result, OrderPlaced):
        return success_status("created"), result.body
    return error_status_and_body(result)


def _expired(order: Order, outcome: ChargeOutcome) -> Conflict:
    if outcome.status == Payment.Status.CAPTURED:
        charge = "; the charge is being refunded."
    elif outcome.status == Payment.Status.UNKNOWN:
        charge = (
            "; the payment gateway did not answer, and if it charged the card "
            "the charge will be refunded."
        )
    else:
        charge = "."
    return Conflict(
        "The checkout took too long and was released"
        + charge
        + " Check out again with a new Idempotency-Key.",
        code="checkout_expired",
        order_id=order.pk,
    )


def _payment_pending(order: Order) -> ServiceUnavailable:
    return ServiceUnavailable(
        "The payment gateway did not answer, so whether the card was charged "
        "is not known yet. The order stays pending, its items reserved, until "
        "the shop's recovery has asked the gateway: it runs every 5 minutes "
        "on the Celery beat schedule, or at once with `python manage.py "
        f"checkout_recover`. GET /api/v1/orders/{order.pk}/ shows the "
        "outcome. Retrying with the same "
        "Idempotency-Key and body is safe: it gets this answer until then, and "
        "afterwards the paid order, or a new checkout if the card was not "
        "charged. Nothing is charged twice.",
        code="payment_pending",
        order_id=order.pk,
    )
