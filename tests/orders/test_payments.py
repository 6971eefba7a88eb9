"""Payments are never lost or doubled.

The fake gateway's ledger (tests/orders/gateway.py) is held against the
shop's orders and payment rows after each path: a capture, a decline, an
answer lost after the capture, a gateway down before it, a capture that
lands after recovery released its order, cancels and their refunds, and
recovery racing itself. Real services throughout: checkout through the API,
recovery as the Celery task runs it, the gateway on its own connection.
"""

import os
import subprocess
import sys
from datetime import timedelta
from decimal import Decimal
from pathlib import Path

import psycopg
import pytest
from django.db import connection, transaction
from django.utils import timezone

from orders import payments
from orders.models import IdempotencyKey, Order, Payment
from orders.services import checkout_recover
from orders.services.settle import ChargeOutcome, payment_record
from shop.db_context import job_transaction
from tests.catalog.factories import StockLevelFactory
from tests.concurrency import run_concurrently
from tests.dbs import ALL_DATABASES, as_staff
from tests.openapi import assert_matches_schema
from tests.orders.conftest import checkout, client_for
from tests.orders.factories import CartItemFactory
from tests.orders.gateway import assert_money_balances, captures, ledger, refunds
from tests.orders.test_plpgsql import interrupted_checkout

pytestmark = [
    pytest.mark.django_db(transaction=True, databases=ALL_DATABASES),
    pytest.mark.usefixtures("gateway"),
]

ROOT = Path(__file__).resolve().parents[2]
AT_ONCE = timedelta(0)
TEN = Decimal("10.00")


def buyer(units=2):
    """A customer with `units` of a SKU in the cart, out of 5 on hand."""
    level = StockLevelFactory(quantity_on_hand=5)
    item = CartItemFactory(variant=level.variant, quantity=units)
    return level, item.cart.customer, client_for(item.cart.customer)


def stock(level):
    level.refresh_from_db()
    return level.quantity_on_hand, level.reserved


def order_in(response) -> Order:
    body = response.json()
    with as_staff():
        return Order.objects.get(pk=body.get("order_id") or body["id"])


def status_of(order) -> str:
    with as_staff():
        return Order.objects.get(pk=order.pk).status


def payment_rows(order) -> list[str]:
    with as_staff():
        return sorted(
            Payment.objects.filter(order=order).values_list("status", flat=True)
        )


def age(order, by: timedelta) -> None:
    """Make the order, its keys and its payment rows look `by` old.

    Recovery's last question to the gateway about it, too: as if the time
    had passed, so the next run may ask again.
    """
    then = timezone.now() - by
    with as_staff():
        Order.objects.filter(pk=order.pk).update(created_at=then)
        IdempotencyKey.objects.filter(order=order).update(created_at=then)
        Payment.objects.filter(order=order).update(created_at=then)
        Payment.objects.filter(order=order, gateway_asked_at__isnull=False).update(
            gateway_asked_at=then
        )


def cancel(client, order):
    return client.post(f"/api/v1/orders/{order.pk}/cancel/")


# The gateway itself


def test_the_gateway_moves_money_once_per_reference():
    first = payments.charge(token="tok_ok", amount=TEN, reference="test-1")
    again = payments.charge(token="tok_ok", amount=TEN, reference="test-1")
    refund = payments.refund(reference="test-1", amount=TEN)

    assert first.approved and again == first
    assert payments.charge_status(reference="test-1") == payments.ChargeLookup(
        payments.ChargeStatus.CAPTURED, first.reference, TEN
    )
    assert payments.refund(reference="test-1", amount=TEN) == refund
    assert len(captures("test-1")) == len(refunds("test-1")) == 1
    assert payments.charge_status(reference="test-2").status == "not_found"


def test_the_gateway_refuses_what_cannot_be_done():
    declined = payments.charge(token="tok_declined", amount=TEN, reference="test-1")
    payments.charge(token="tok_ok", amount=TEN, reference="test-2")

    assert not declined.approved
    assert payments.charge_status(reference="test-1").status == "declined"
    with pytest.raises(payments.GatewayRefused):
        payments.refund(reference="test-1", amount=TEN)  # nothing captured
    with pytest.raises(payments.GatewayRefused):
        payments.refund(reference="test-2", amount=TEN + 1)
    with pytest.raises(payments.GatewayRefused):
        payments.charge(token="tok_ok", amount=TEN + 1, reference="test-2")
    assert refunds() == []


def test_the_test_modes_lose_answers_but_move_money_once():
    with pytest.raises(payments.GatewayTimeout):
        payments.charge(token="tok_timeout_after_capture", amount=TEN, reference="t-1")
    with pytest.raises(payments.GatewayUnavailable):
        payments.charge(token="tok_fail_before_capture", amount=TEN, reference="t-2")
    payments.charge(token="tok_refund_timeout", amount=TEN, reference="t-3")
    with pytest.raises(payments.GatewayTimeout):
        payments.refund(reference="t-3", amount=TEN)

    # The timed-out capture happened, and a replay answers normally.
    assert payments.charge_status(reference="t-1").status == "captured"
    assert payments.charge(
        token="tok_timeout_after_capture", amount=TEN, reference="t-1"
    ).approved
    assert payments.charge_status(reference="t-2").status == "not_found"
    (refund,) = refunds("t-3")
    assert payments.refund(reference="t-3", amount=TEN).reference == (
        refund.gateway_reference
    )
    assert [e.reference for e in captures()] == ["t-1", "t-3"]
    assert len(refunds()) == 1


def test_no_gateway_call_runs_inside_a_transaction():
    calls = [
        lambda: payments.charge(token="tok_ok", amount=TEN, reference="test-1"),
        lambda: payments.charge_status(reference="test-1"),
        lambda: payments.refund(reference="test-1", amount=TEN),
    ]
    with transaction.atomic():
        for call in calls:
            with pytest.raises(payments.PaymentCalledInTransaction):
                call()
    assert ledger() == []


# Checkout


def test_a_paid_checkout_is_captured_once_and_a_retry_charges_nothing(gateway):
    level, _, client = buyer()

    first = checkout(client, key="k")
    again = checkout(client, key="k")

    assert first.status_code == 201
    assert again.json() == first.json()
    order = order_in(first)
    (capture,) = captures()
    assert (capture.reference, capture.amount) == (
        order.payment_reference,
        order.total,
    )
    # The retry was answered from the key: the shop called the gateway once.
    assert gateway.references("charge") == {order.payment_reference: 1}
    assert stock(level) == (3, 0)
    assert_money_balances()


def test_a_declined_card_captures_nothing():
    level, _, client = buyer()

    response = checkout(client, payment="tok_declined")

    assert response.status_code == 402
    assert [e.outcome for e in ledger()] == ["declined"]
    assert payment_rows(order_in(response)) == ["declined"]
    assert stock(level) == (5, 0)
    assert_money_balances()


def test_an_answer_lost_after_the_capture_keeps_the_order_pending_until_recovery(
    gateway,
):
    level, _, client = buyer()

    response = checkout(client, key="k", payment="tok_timeout_after_capture")

    # Not a decline: the client is told the outcome is not known yet...
    assert response.status_code == 503
    assert response.json()["code"] == "payment_pending"
    assert response["Retry-After"] == "60"
    assert_matches_schema(response, "/api/v1/checkout/", "POST")
    order = order_in(response)
    # ...the order keeps its reservation and the unknown outcome is on file,
    assert status_of(order) == "pending"
    assert stock(level) == (5, 2)
    assert payment_rows(order) == ["unknown"]
    assert client.get(f"/api/v1/orders/{order.pk}/").json()["status"] == "pending"
    # and no retry charges again: the same key replays, a new key is refused.
    again = checkout(client, key="k", payment="tok_timeout_after_capture")
    assert (again.status_code, again.json()) == (503, response.json())
    other = checkout(client, payment="tok_ok")
    assert (other.status_code, other.json()["code"]) == (409, "checkout_in_progress")
    assert gateway.count("charge") == 1

    assert checkout_recover().settled == 0  # a minute to settle on its own first
    age(order, timedelta(minutes=2))
    assert checkout_recover().settled == 1

    assert status_of(order) == "paid"
    assert stock(level) == (3, 0)
    replay = checkout(client, key="k", payment="tok_timeout_after_capture")
    assert (replay.status_code, replay.json()["id"]) == (201, order.pk)
    assert client.get("/api/v1/cart/").json()["items"] == []
    assert gateway.count("charge") == 1
    # Asked once, at the first run after the checkout was a minute old.
    assert gateway.count("charge_status", order.payment_reference) == 1
    assert_money_balances()


def test_a_gateway_down_before_the_capture_is_released_once_the_checkout_is_stale():
    level, _, client = buyer()

    response = checkout(client, key="k", payment="tok_fail_before_capture")

    assert (response.status_code, response.json()["code"]) == (503, "payment_pending")
    order = order_in(response)
    assert payment_rows(order) == ["unknown"]
    assert captures() == []

    # "Not found" five minutes in is not trusted: the charge might still be
    # on its way to the gateway. Only a stale checkout is released.
    age(order, timedelta(minutes=5))
    assert checkout_recover().settled == 0
    assert (status_of(order), stock(level)) == ("pending", (5, 2))
    age(order, timedelta(hours=1))
    assert checkout_recover().settled == 1

    assert (status_of(order), stock(level)) == ("failed", (5, 0))
    assert payment_rows(order) == ["not_captured"]
    with as_staff():
        assert not IdempotencyKey.objects.filter(key="k").exists()
    # Nothing was bought: the cart is intact and can be paid for, once.
    assert checkout(client, payment="tok_ok").status_code == 201
    assert len(captures()) == 1
    assert_money_balances()


def test_a_capture_that_lands_after_recovery_released_the_order_is_refunded(
    gateway,
):
    level, _, client = buyer()

    def release_while_the_gateway_answers(call):
        # The gateway has not captured yet: asked now, it knows no charge.
        if call.name == "charge":
            checkout_recover(older_than=AT_ONCE, captured_after=AT_ONCE)

    gateway.also(release_while_the_gateway_answers)
    response = checkout(client, key="k")

    assert response.status_code == 409
    assert response.json()["code"] == "checkout_expired"
    assert "refunded" in response.json()["detail"]
    assert_matches_schema(response, "/api/v1/checkout/", "POST")
    order = order_in(response)
    assert (status_of(order), stock(level)) == ("failed", (5, 0))
    assert payment_rows(order) == ["captured", "refunded"]
    ((capture,), (refund,)) = captures(), refunds()
    assert refund.amount == capture.amount == order.total
    assert_money_balances()

    checkout_recover(older_than=AT_ONCE, captured_after=AT_ONCE)
    assert gateway.count("refund", order.payment_reference) == 1


def test_a_capture_whose_answer_died_with_its_process_is_found_and_refunded(gateway):
    level, order = interrupted_checkout()
    age(order, timedelta(hours=1))
    assert checkout_recover().released == 1  # the gateway knew no charge
    assert payment_rows(order) == ["not_captured"]

    # The process that was paying captured after all, then died before
    # writing anything down.
    payments.charge(
        token="tok_ok", amount=order.total, reference=order.payment_reference
    )
    age(order, timedelta(hours=1))  # recovery asks again later
    checkout_recover()

    assert payment_rows(order) == ["captured", "refunded"]
    assert (status_of(order), stock(level)) == ("failed", (5, 0))
    assert_money_balances()
    age(order, timedelta(hours=1))
    checkout_recover()
    assert gateway.count("refund", order.payment_reference) == 1


def test_the_release_procedure_never_releases_an_order_nobody_asked_about():
    level, order = interrupted_checkout()
    age(order, timedelta(hours=1))
    call = "CALL orders_release_stale_reservations(%s, 100, 0)"

    with connection.cursor() as cursor:
        cursor.execute(call, [timedelta(minutes=15)])
        assert cursor.fetchone() == (0,)
        assert (status_of(order), stock(level)) == ("pending", (5, 2))
        with job_transaction("test"):
            payment_record(
                order_id=order.pk,
                amount=order.total,
                outcome=ChargeOutcome(Payment.Status.NOT_CAPTURED),
            )
        cursor.execute(call, [timedelta(minutes=15)])
        assert cursor.fetchone() == (1,)
    assert (status_of(order), stock(level)) == ("failed", (5, 0))


@pytest.mark.parametrize(
    "answers, kept",
    [
        (["unknown", "not_captured", "captured"], "captured"),
        (["captured", "not_captured", "unknown", "declined"], "captured"),
        (["not_captured", "unknown"], "not_captured"),
        (["unknown", "declined"], "declined"),
    ],
)
def test_an_orders_charge_row_only_moves_towards_certainty(answers, kept):
    _, order = interrupted_checkout()

    for answer in answers:
        with job_transaction("test"):
            payment_record(
                order_id=order.pk,
                amount=order.total,
                outcome=ChargeOutcome(answer, f"gw-{answer}"),
            )

    with as_staff():
        rows = list(Payment.objects.values_list("status", "gateway_reference"))
    assert rows == [(kept, f"gw-{kept}")]


def test_recovery_in_another_process_asks_the_same_gateway():
    level, _, client = buyer()
    order = order_in(checkout(client, payment="tok_timeout_after_capture"))
    age(order, timedelta(minutes=2))
    # The command, as cron or an operator would run it: a process of its
    # own, with connections of its own, on this test's database.
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "shop.settings.test",
        "SHOP_DATABASE": connection.settings_dict["NAME"],
    }

    done = subprocess.run(
        [sys.executable, "manage.py", "checkout_recover"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )

    assert done.returncode == 0, done.stderr
    assert "finished or released 1 " in done.stdout
    assert (status_of(order), stock(level)) == ("paid", (3, 0))
    assert_money_balances()


# Cancel


def test_a_cancel_refunds_through_the_gateway_once_even_if_retried(gateway):
    level, customer, client = buyer()
    order = order_in(checkout(client))
    clients = [client_for(customer) for _ in range(3)]

    responses, errors = run_concurrently(
        [lambda c=c: cancel(c, order) for c in clients]
    )

    assert errors == [None] * 3
    assert sorted(r.status_code for r in responses) == [200, 409, 409]
    assert stock(level) == (5, 0)
    assert payment_rows(order) == ["captured", "refunded"]
    assert cancel(client, order).status_code == 409
    checkout_recover(older_than=AT_ONCE, captured_after=AT_ONCE)
    ((capture,), (refund,)) = captures(), refunds()
    assert refund.amount == capture.amount == order.total
    # Only the cancel that won asked the gateway, and recovery did not.
    assert gateway.count("refund", order.payment_reference) == 1
    assert_money_balances()


def test_a_refund_whose_answer_was_lost_is_recorded_by_recovery_not_made_twice(
    gateway,
):
    level, _, client = buyer()
    order = order_in(checkout(client, payment="tok_refund_timeout"))

    response = cancel(client, order)

    # Cancelled, and the refund owed; the gateway made it, the shop does not
    # know that yet.
    assert (response.status_code, response.json()["status"]) == (200, "cancelled")
    assert payment_rows(order) == ["captured", "refund_pending"]
    assert len(refunds()) == 1

    checkout_recover()  # a minute for the request to finish it first
    assert payment_rows(order) == ["captured", "refund_pending"]
    age(order, timedelta(minutes=2))
    checkout_recover()
    checkout_recover()

    assert payment_rows(order) == ["captured", "refunded"]
    assert len(refunds()) == 1
    # The cancel's call, whose answer was lost, and one retry by recovery;
    # the run after it found the refund recorded and called nothing.
    assert gateway.count("refund", order.payment_reference) == 2
    assert_money_balances()


@pytest.mark.parametrize(
    "silence",
    [
        payments.GatewayTimeout("the refund timed out"),
        psycopg.OperationalError("the gateway's store went away mid-call"),
        ConnectionResetError("the connection to the gateway was cut"),
    ],
    ids=["timeout", "store", "connection"],
)
def test_a_refund_that_gets_no_answer_never_turns_a_committed_cancel_into_a_500(
    gateway, silence
):
    level, _, client = buyer()
    order = order_in(checkout(client))
    first_refund = []

    def no_answer_the_first_time(call):
        if call.name == "refund" and not first_refund:
            first_refund.append(call)
            raise silence

    gateway.also(no_answer_the_first_time)

    response = cancel(client, order)

    # The cancel committed; the refund stays owed, for recovery.
    assert (response.status_code, response.json()["status"]) == (200, "cancelled")
    assert payment_rows(order) == ["captured", "refund_pending"]
    assert stock(level) == (5, 0)
    assert_money_balances(refunds_pending=[order])
    age(order, timedelta(minutes=2))
    assert checkout_recover().refunded == 1
    assert payment_rows(order) == ["captured", "refunded"]
    assert_money_balances()


# Recovery against itself


def test_recovery_run_twice_at_once_captures_and_refunds_nothing_twice(gateway):
    _, _, pending_paid = buyer()
    paid = order_in(checkout(pending_paid, payment="tok_timeout_after_capture"))
    _, _, pending_unpaid = buyer()
    unpaid = order_in(checkout(pending_unpaid, payment="tok_fail_before_capture"))
    _, _, canceller = buyer()
    cancelled = order_in(checkout(canceller, payment="tok_refund_timeout"))
    assert cancel(canceller, cancelled).status_code == 200
    _, lost = interrupted_checkout()
    _, late = interrupted_checkout()
    age(late, timedelta(hours=1))
    checkout_recover()
    payments.charge(token="tok_ok", amount=late.total, reference=late.payment_reference)
    for order in (paid, unpaid, cancelled, lost, late):
        age(order, timedelta(hours=1))
    asked_before = gateway.references("charge_status")

    results, errors = run_concurrently([checkout_recover] * 3)

    assert errors == [None] * 3
    assert [r.failures for r in results] == [[], [], []]
    assert sum(r.settled for r in results) == 3  # paid finished; 2 released
    assert [status_of(o) for o in (paid, unpaid, cancelled, lost, late)] == [
        "paid",
        "failed",
        "cancelled",
        "failed",
        "failed",
    ]
    assert payment_rows(paid) == ["captured"]
    assert payment_rows(unpaid) == payment_rows(lost) == ["not_captured"]
    assert payment_rows(cancelled) == payment_rows(late) == ["captured", "refunded"]
    assert len(captures()) == 3
    assert len(refunds()) == 2
    # Each order was asked about, and each refund made, by one run only.
    asked = gateway.references("charge_status") - asked_before
    assert sorted(asked.values()) == [1, 1, 1, 1]  # paid, unpaid, lost, late
    for order in (cancelled, late):
        assert gateway.count("refund", order.payment_reference) == (
            2 if order is cancelled else 1
        )
    assert_money_balances()
