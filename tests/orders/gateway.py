"""The fake payment gateway's side of the books, for tests.

The shop's code never reads the gateway's ledger (orders/payments.py); the
tests do, as an auditor holding the gateway's statement against the shop's
records would. The ledger cannot hold two charges or two refunds under one
reference (its UNIQUE constraint), so counting its entries proves nothing
about the shop: GatewayCalls counts the shop's *calls* instead, through
PAYMENT_GATEWAY_HOOK, and can hold a call inside the gateway.
"""

import threading
from collections import Counter
from dataclasses import dataclass
from decimal import Decimal

from django.db import connections

from orders.models import CHARGE_STATUSES, Order, Payment
from orders.payments import GatewayCall
from tests.dbs import as_staff


class GatewayCalls:
    """PAYMENT_GATEWAY_HOOK for tests: counts every call, runs extra hooks.

    `count("refund", reference)` is how many times the shop asked the
    gateway for that refund, whatever the gateway then did; `also(hook)`
    adds a hook called with each GatewayCall, in the caller's thread, before
    the gateway does anything (to hold a call, or act meanwhile).
    """

    def __init__(self):
        self._lock = threading.Lock()
        self._counts: Counter[tuple[str, str]] = Counter()
        self._hooks = []

    def __call__(self, call: GatewayCall) -> None:
        with self._lock:
            self._counts[(call.name, call.reference)] += 1
            hooks = list(self._hooks)
        for hook in hooks:
            hook(call)

    def also(self, hook) -> None:
        with self._lock:
            self._hooks.append(hook)

    def count(self, name: str, reference: str | None = None) -> int:
        with self._lock:
            return sum(
                n
                for (called, ref), n in self._counts.items()
                if called == name and reference in (None, ref)
            )

    def references(self, name: str) -> Counter:
        """Calls of `name`, per reference."""
        with self._lock:
            return Counter(
                {ref: n for (called, ref), n in self._counts.items() if called == name}
            )


class HoldAll:
    """A hook that holds `parties` calls of `name` inside the gateway together.

    Each held call waits at a barrier until all `parties` have arrived, so
    they race from inside the same gateway call: two recovery runs that
    both asked about one order, say. Only the first `parties` matching calls
    are held.
    """

    def __init__(self, name: str, parties: int, reference: str | None = None):
        self.name, self.reference = name, reference
        self.barrier = threading.Barrier(parties, timeout=30)
        self._left = parties
        self._lock = threading.Lock()

    def __call__(self, call: GatewayCall) -> None:
        if call.name != self.name or self.reference not in (None, call.reference):
            return
        with self._lock:
            if self._left == 0:
                return
            self._left -= 1
        self.barrier.wait()


@dataclass(frozen=True)
class Entry:
    kind: str
    reference: str
    outcome: str
    amount: Decimal
    gateway_reference: str


def ledger() -> list[Entry]:
    """Every entry the gateway has made, oldest first."""
    with connections["default"].cursor() as cursor:
        cursor.execute(
            "SELECT kind, reference, outcome, amount, gateway_reference "
            "FROM orders_fake_gateway_ledger ORDER BY id"
        )
        return [Entry(*row) for row in cursor.fetchall()]


def captures(reference: str | None = None) -> list[Entry]:
    return [
        e
        for e in ledger()
        if e.kind == "charge"
        and e.outcome == "captured"
        and reference in (None, e.reference)
    ]


def refunds(reference: str | None = None) -> list[Entry]:
    return [
        e for e in ledger() if e.kind == "refund" and reference in (None, e.reference)
    ]


def ledger_clear() -> None:
    """Forget every entry: the gateway commits them on a connection of its own,
    so they outlive each test's rollback or flush."""
    with connections["default"].cursor() as cursor:
        cursor.execute("DELETE FROM orders_fake_gateway_ledger")


def assert_money_balances(*, refunds_pending=()) -> None:
    """Captured = paid orders' payments + refunds, and both sets of books agree.

    From the gateway to the shop: every capture at the gateway is either a
    paid order's payment or was refunded, exactly once and in full; every
    paid order was captured once, for its total; and the shop's payment
    rows carry the gateway's own ids for what the gateway did.

    From the shop to the gateway: every `captured` row is a capture the
    gateway holds under the order's reference, for the same amount and
    with the same id; every `refunded` row a refund it made, likewise;
    every `refund_failed` row a refund it never made; and no refund is
    still owed (`refund_pending`) except on the orders in `refunds_pending`,
    whose tests expect one.
    """
    entries = ledger()
    charges = {e.reference: e for e in entries if e.kind == "charge"}
    captured = {r: e for r, e in charges.items() if e.outcome == "captured"}
    refunded = {e.reference: e for e in entries if e.kind == "refund"}
    with as_staff():
        orders = {o.payment_reference: o for o in Order.objects.all()}
        reference_of = {o.pk: o.payment_reference for o in orders.values()}
        rows = list(
            Payment.objects.values_list(
                "order_id", "status", "amount", "gateway_reference"
            )
        )
    # Captures the shop owes back and the test expects still owed: the
    # gateway may have made the refund already (its answer lost) or not.
    owed = {reference_of[order.pk] for order in refunds_pending}
    paid = [o for o in orders.values() if o.status == Order.Status.PAID]
    given_back = {r: e for r, e in refunded.items() if r not in owed}
    assert sum(e.amount for e in captured.values()) == sum(
        (o.total for o in paid), Decimal("0")
    ) + sum((e.amount for e in given_back.values()), Decimal("0")) + sum(
        (captured[r].amount for r in owed), Decimal("0")
    )
    for order in paid:
        assert captured[order.payment_reference].amount == order.total
    for reference, capture in captured.items():
        order = orders[reference]  # no capture for an order the shop forgot
        if order.status == Order.Status.PAID:
            assert reference not in refunded, f"{reference} is paid and refunded"
        elif reference not in owed:
            assert refunded[reference].amount == capture.amount, reference
    shop = {}
    for order_id, status, amount, gateway_reference in rows:
        kind = "charge" if status in CHARGE_STATUSES else "refund"
        shop[(kind, reference_of[order_id])] = (status, amount, gateway_reference)
    for reference, capture in captured.items():
        assert shop[("charge", reference)] == (
            "captured",
            capture.amount,
            capture.gateway_reference,
        )
    for reference, refund in given_back.items():
        assert shop[("refund", reference)] == (
            "refunded",
            refund.amount,
            refund.gateway_reference,
        )

    for (kind, reference), (status, amount, gateway_reference) in shop.items():
        at_gateway = captured if kind == "charge" else refunded
        if status in ("captured", "refunded"):
            entry = at_gateway.get(reference)
            assert entry is not None, f"{status} {reference}: unknown to the gateway"
            assert (entry.amount, entry.gateway_reference) == (
                amount,
                gateway_reference,
            ), f"{status} {reference}: not what the gateway did"
        elif status == "refund_failed":
            assert reference not in refunded, f"{reference}: refund failed, yet made"
        elif status == "refund_pending":
            assert reference in owed, f"{reference}: a refund still owed"
    still_owed = {r for (kind, r), row in shop.items() if row[0] == "refund_pending"}
    assert owed <= still_owed, f"refunds expected pending: {owed - still_owed}"
