"""Checkouts for drills: real customers buying real stock through the services.

A crash drill (tests/orders/test_crash_safety.py) and a point-in-time
recovery drill need a client that places orders the way the API does and
says exactly which ones it was told are placed. Each checkout here makes the
API's calls: cart_item_add, then checkout() with a fresh idempotency key,
which runs its three phases (reserve, charge the fake gateway, settle). An
order is acknowledged only once checkout() has returned OrderPlaced, the
201 a client would get; the drill reports it only then.
"""

import random
import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

import psycopg
from django.db import connections
from django.db.models import F

from catalog.models import StockLevel
from orders.selectors import cart_get
from orders.services import (
    OrderPlaced,
    ShippingAddress,
    cart_item_add,
    cart_item_remove,
    checkout,
    request_fingerprint,
)
from shop.accounts.models import Customer
from shop.db_context import staff_transaction
from shop.errors import ApplicationError, database_down

ADDRESS = {
    "line1": "1 Drill Street",
    "city": "Crashville",
    "postal_code": "12345",
    "country": "US",
}
# Mostly captured; some declined (their stock is released at once); a few
# captured but never answered, which leave the order pending until recovery
# asks the gateway (orders/payments.py has the test tokens).
TOKENS = ["tok_ok"] * 17 + ["tok_declined"] * 2 + ["tok_timeout_after_capture"]
# A variant is offered while one warehouse can ship this many units, so
# that carts rarely meet a stock shortage.
MIN_AVAILABLE = 5


@dataclass(frozen=True)
class Ack:
    """An order the client was told is placed: the checkout's 201."""

    order: int
    total: str
    status: str
    customer: int
    at: str


class ConnectionLost(Exception):
    """The database stopped answering: the worker ends, as a client would."""


def connection_lost(exc: Exception) -> bool:
    """Whether `exc` says the database is gone, not that the shop has a bug."""
    # psycopg's own errors come from the gateway's connection. Only the
    # connection's end counts: no SQLSTATE (the socket closed), class 08
    # (connection exception) or 57P (the server shutting down). A deadlock,
    # a cancelled statement or a lock timeout is an OperationalError too,
    # and must fail the drill, not end a worker quietly.
    if database_down(exc) is not exc or isinstance(exc, psycopg.InterfaceError):
        return True
    if isinstance(exc, psycopg.OperationalError):
        state = exc.sqlstate or ""
        return not state or state.startswith(("08", "57P"))
    return False


def first_line(exc: Exception) -> str:
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0]


def drill_customers(*, part: int = 1, parts: int = 1) -> list[int]:
    """Customer ids for client `part` of `parts` (1-based): disjoint sets."""
    with staff_transaction():
        ids = list(Customer.objects.order_by("pk").values_list("pk", flat=True))
    return ids[part - 1 :: parts]


def drill_skus() -> list[str]:
    """SKUs on sale that some warehouse holds a few units of."""
    with staff_transaction():
        skus = (
            StockLevel.objects.filter(
                variant__is_active=True, variant__product__is_active=True
            )
            .annotate(available=F("quantity_on_hand") - F("reserved"))
            .filter(available__gte=MIN_AVAILABLE)
            .values_list("variant__sku", flat=True)
            .distinct()
        )
        return sorted(skus)


class Budget:
    """Checkouts still to try, shared by a process's workers; None: no limit."""

    def __init__(self, count: int | None, deadline: float | None, clock):
        self._left = count
        self._deadline = deadline
        self._clock = clock
        self._lock = threading.Lock()

    def take(self) -> bool:
        if self._deadline is not None and self._clock() >= self._deadline:
            return False
        with self._lock:
            if self._left is None:
                return True
            if self._left <= 0:
                return False
            self._left -= 1
            return True


def cart_empty(customer_id: int) -> None:
    """Remove every line of the customer's cart, through the cart service."""
    for item in cart_get(customer_id=customer_id)["items"]:
        cart_item_remove(customer_id=customer_id, item_id=item["id"])


def checkout_once(customer_id: int, skus: list[str], rng: random.Random):
    """One customer's checkout of 1-3 random SKUs; the service's outcome."""
    for sku in rng.sample(skus, k=min(len(skus), rng.randint(1, 3))):
        cart_item_add(customer_id=customer_id, sku=sku, quantity=rng.randint(1, 2))
    body = {"shipping_address": ADDRESS, "payment_token": rng.choice(TOKENS)}
    return checkout(
        customer_id=customer_id,
        key=str(uuid.uuid4()),
        address=ShippingAddress(**ADDRESS),
        payment_token=body["payment_token"],
        coupon_code=None,
        fingerprint=request_fingerprint(body),
    )


def drill_worker(
    *,
    customers: list[int],
    skus: list[str],
    budget: Budget,
    rng: random.Random,
    acknowledge: Callable[[Ack], None],
) -> int:
    """Check out for random ones of `customers` until the budget ends; count acks.

    Raises ConnectionLost when the database stops answering.
    """
    acks = 0
    try:
        for customer_id in customers:
            cart_empty(customer_id)
        while budget.take():
            customer_id = rng.choice(customers)
            try:
                outcome = checkout_once(customer_id, skus, rng)
            except ApplicationError:
                # Refused at the cart (short stock, a busy row): not placed.
                outcome = None
            if isinstance(outcome, OrderPlaced):
                acks += 1
                acknowledge(
                    Ack(
                        order=outcome.body["id"],
                        total=outcome.body["total"],
                        status=outcome.body["status"],
                        customer=customer_id,
                        at=datetime.now(UTC).isoformat(),
                    )
                )
            else:
                # Declined, pending payment or refused: the lines may still
                # be in the cart; start the next checkout afresh.
                cart_empty(customer_id)
    except Exception as exc:
        if connection_lost(exc):
            raise ConnectionLost(first_line(exc)) from exc
        raise
    finally:
        connections.close_all()
    return acks
