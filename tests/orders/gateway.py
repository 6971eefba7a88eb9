"""The fake payment gateway's side of the books, for tests.

The shop's code never reads the gateway's ledger (orders/payments.py); the
tests do, as an auditor holding the gateway's statement against the shop's
records would.
"""

from collections import Counter
from dataclasses import dataclass
from decimal import Decimal

from django.db import connections

from orders.models import CHARGE_STATUSES, Order, Payment
from orders.models import payment_reference as reference_of
from tests.dbs import as_staff


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


def assert_money_balances() -> None:
    """Captured = paid orders' payments + refunds, and both sets of books agree.

    Every capture at the gateway is either a paid order's payment or was
    refunded, exactly once and in full; every paid order was captured once,
    for its total; and the shop's payment rows carry the gateway's own ids
    for what the gateway did.
    """
    entries = ledger()
    per_kind = Counter((e.kind, e.reference) for e in entries)
    assert all(n == 1 for n in per_kind.values()), per_kind
    captured = {e.reference: e for e in entries if e.kind == "charge"}
    captured = {r: e for r, e in captured.items() if e.outcome == "captured"}
    refunded = {e.reference: e for e in entries if e.kind == "refund"}
    with as_staff():
        orders = {reference_of(o.pk): o for o in Order.objects.all()}
        rows = list(
            Payment.objects.values_list(
                "order_id", "status", "amount", "gateway_reference"
            )
        )
    paid = [o for o in orders.values() if o.status == Order.Status.PAID]
    assert sum(e.amount for e in captured.values()) == sum(
        (o.total for o in paid), Decimal("0")
    ) + sum((e.amount for e in refunded.values()), Decimal("0"))
    for order in paid:
        assert captured[reference_of(order.pk)].amount == order.total
    for reference, capture in captured.items():
        order = orders[reference]  # no capture for an order the shop forgot
        if order.status == Order.Status.PAID:
            assert reference not in refunded, f"{reference} is paid and refunded"
        else:
            assert refunded[reference].amount == capture.amount, reference
    shop = {}
    for order_id, status, amount, gateway_reference in rows:
        kind = "charge" if status in CHARGE_STATUSES else "refund"
        shop[(kind, reference_of(order_id))] = (status, amount, gateway_reference)
    for reference, capture in captured.items():
        assert shop[("charge", reference)] == (
            "captured",
            capture.amount,
            capture.gateway_reference,
        )
    for reference, refund in refunded.items():
        assert shop[("refund", reference)] == (
            "refunded",
            refund.amount,
            refund.gateway_reference,
        )
