"""Recovery against the races and faults reviewers found.

The release procedure and a capture landing as it locks its batch; a failed
order left holding a capture; one order, or one step, that fails; how often
the gateway is asked; phase 3 racing recovery; a process that died between
recording its capture and settling; a refund the gateway refuses; payment
references that outlive their database.

The gateway's ledger cannot hold two charges or refunds under one
reference, so these tests count the shop's *calls* to the gateway
(tests/orders/gateway.py:GatewayCalls) and hold calls inside it with
barriers, each racer on its own connection.
"""

import io
import threading
import time
import uuid
from datetime import timedelta
from decimal import Decimal

import psycopg
import pytest
from django.core.management import CommandError, call_command
from django.db import connection, connections
from django.test import Client
from django.utils import timezone

from catalog.models import StockLevel
from orders import payments
from orders.models import (
    Coupon,
    CouponRedemption,
    IdempotencyKey,
    Order,
    Payment,
    StockMovement,
)
from orders.services import checkout_recover, idempotency, settle
from orders.services import orders as recovery
from orders.services.checkout import _charge, _record, _reserve, _settle
from orders.services.idempotency import Replay, request_fingerprint
from orders.services.settle import ChargeOutcome, payment_record
from shop.db_context import job_transaction
from tests.accounts.factories import UserFactory
from tests.catalog.factories import StockLevelFactory
from tests.catalog.test_in_stock import drift as in_stock_drift
from tests.concurrency import run_concurrently
from tests.dbs import ALL_DATABASES, as_staff
from tests.orders.conftest import ADDRESS, checkout, client_for
from tests.orders.factories import CartItemFactory, CouponFactory, OrderFactory
from tests.orders.gateway import (
    HoldAll,
    assert_money_balances,
    captures,
    ledger,
    refunds,
)
from tests.orders.test_payments import (
    AT_ONCE,
    age,
    buyer,
    cancel,
    order_in,
    payment_rows,
    status_of,
    stock,
)
from tests.orders.test_plpgsql import ADDRESS as SHIPPING
from tests.orders.test_plpgsql import interrupted_checkout

pytestmark = [
    pytest.mark.django_db(transaction=True, databases=ALL_DATABASES),
    pytest.mark.usefixtures("gateway"),
]

STALE = timedelta(minutes=15)
CALL = "CALL orders_release_stale_reservations(%s, 100, 0)"


def record(order, status, **outcome):
    with job_transaction("test"):
        payment_record(
            order_id=order.pk,
            amount=order.total,
            outcome=ChargeOutcome(status, **outcome),
        )


def raw_connection(**options):
    """A psycopg connection of its own, as the app's role, on the test database."""
    params = connections["default"].get_connection_params()
    for name in payments.DJANGO_ONLY_PARAMS:
        params.pop(name, None)
    return psycopg.connect(**params, **options)


def wait_until_waiting_for_a_lock(pid, timeout=10.0):
    """Block until the backend `pid` waits for a lock."""
    deadline = time.monotonic() + timeout
    with raw_connection(autocommit=True) as watcher:
        while time.monotonic() < deadline:
            (waiting,) = watcher.execute(
                "SELECT wait_event_type = 'Lock' FROM pg_stat_activity WHERE pid = %s",
                [pid],
            ).fetchone()
            if waiting:
                return
            time.sleep(0.02)
    raise AssertionError(f"backend {pid} never waited for a lock")


# B1: the release procedure and a capture that lands as it locks its batch


def test_the_release_procedure_drops_an_order_captured_after_its_batch_select():
    """The race a single read of the batch loses, step by step, from three connections.

    Recovery has recorded the order as not captured, so the procedure's
    batch SELECT takes it and locks it. Then, before the procedure releases
    anything, the order's charge turns out captured and that commits (what
    a checkout's _record committing between the batch's snapshot and its
    lock amounts to). A procedure that decided from the batch SELECT alone
    released the order: failed, its capture kept, nothing owed back. The
    procedure checks the locked batch again in a new statement and leaves
    the order pending, and recovery then finishes it.
    """
    level, order = interrupted_checkout()
    age(order, timedelta(hours=1))
    record(order, Payment.Status.NOT_CAPTURED)
    capture = payments.charge(
        token="tok_ok", amount=order.total, reference=order.payment_reference
    )
    holder = raw_connection()
    procedure = raw_connection(autocommit=True)
    try:
        # Holds the order's stock row, which the procedure locks right
        # after its batch SELECT: the procedure waits there, its batch
        # (this order) locked.
        holder.execute(
            "SELECT 1 FROM catalog_stock_level WHERE id = %s FOR UPDATE", [level.pk]
        )
        result = {}
        call = threading.Thread(
            target=lambda: result.update(
                released=procedure.execute(CALL, [STALE]).fetchone()[0]
            )
        )
        call.start()
        wait_until_waiting_for_a_lock(procedure.info.backend_pid)
        # The capture is recorded and committed meanwhile. Not through
        # payment_record, which would wait for the order's lock the
        # procedure holds; its commit just before that lock looks the same
        # to the procedure's later statements.
        with as_staff():
            Payment.objects.filter(order=order).update(
                status=Payment.Status.CAPTURED, gateway_reference=capture.reference
            )
        holder.rollback()
        call.join(30)
    finally:
        holder.close()
        procedure.close()

    assert result == {"released": 0}
    assert (status_of(order), stock(level)) == ("pending", (5, 2))
    assert checkout_recover().finished == 1
    assert (status_of(order), stock(level)) == ("paid", (3, 0))
    assert_money_balances()


def test_the_release_procedure_takes_products_before_coupons_as_checkout_does():
    """No deadlock between the procedure and a checkout on a product and a coupon.

    Releasing this order's five units makes its product available again,
    so the stock trigger locks the product
    (catalog/sql/triggers/product_in_stock_v01.sql). A checkout that has
    just reserved a product's last unit holds that product and goes on to
    lock its coupon. The holder below plays it: the product, then, once the
    procedure waits, the coupon. Version 3 of the procedure locked the
    coupon before the trigger locked the product, and the two waited for
    each other until PostgreSQL aborted one (40P01). Version 4 locks the
    product first, so it waits without holding the coupon.
    """
    coupon = CouponFactory(code="SHARED", usage_limit=100)
    level, order = interrupted_checkout(units=5, coupon="SHARED")
    product_id = level.variant.product_id
    age(order, timedelta(hours=1))
    record(order, Payment.Status.NOT_CAPTURED)
    holder = raw_connection()
    procedure = raw_connection(autocommit=True)
    result = {}
    try:
        holder.execute("SET lock_timeout = '10s'")
        assert holder.execute(
            "SELECT id FROM catalog_product WHERE id = %s FOR UPDATE", [product_id]
        ).fetchall() == [(product_id,)]
        call = threading.Thread(
            target=lambda: result.update(
                released=procedure.execute(CALL, [STALE]).fetchone()[0]
            )
        )
        call.start()
        wait_until_waiting_for_a_lock(procedure.info.backend_pid)
        # The checkout's next lock: its coupon. A deadlock here would abort
        # one side after deadlock_timeout (1 s).
        assert holder.execute(
            "SELECT id FROM orders_coupon WHERE id = %s FOR UPDATE", [coupon.pk]
        ).fetchall() == [(coupon.pk,)]
        holder.commit()
        call.join(30)
    finally:
        holder.close()
        procedure.close()

    assert result == {"released": 1}
    assert (status_of(order), stock(level)) == ("failed", (5, 0))
    assert in_stock_drift() == []


def test_a_capture_recorded_while_the_procedure_holds_the_order_owes_its_refund():
    """The race's other half: the capture is recorded *after* the batch's locks.

    payment_record locks the order before it writes the charge, so it waits
    for the procedure, which releases the order (its charge is still not
    captured when the procedure looks again) and commits. The record then
    finds the order failed and owes the refund in the same transaction as
    the capture; recovery makes it.
    """
    level, order = interrupted_checkout()
    age(order, timedelta(hours=1))
    record(order, Payment.Status.NOT_CAPTURED)
    capture = payments.charge(
        token="tok_ok", amount=order.total, reference=order.payment_reference
    )
    holder = raw_connection()
    procedure = raw_connection(autocommit=True)
    result, recorder = {}, {}
    recorder_connected = threading.Event()

    def record_the_capture():
        try:
            connection.ensure_connection()
            recorder["pid"] = connection.connection.info.backend_pid
            recorder_connected.set()
            with job_transaction("test", lock_timeout="30s"):
                payment_record(
                    order_id=order.pk,
                    amount=order.total,
                    outcome=ChargeOutcome(Payment.Status.CAPTURED, capture.reference),
                )
        except BaseException as exc:
            recorder["error"] = exc
            recorder_connected.set()
        finally:
            connections.close_all()

    try:
        # The procedure stops at the stock lock, its batch (this order)
        # already locked.
        holder.execute(
            "SELECT 1 FROM catalog_stock_level WHERE id = %s FOR UPDATE", [level.pk]
        )
        call = threading.Thread(
            target=lambda: result.update(
                released=procedure.execute(CALL, [STALE]).fetchone()[0]
            )
        )
        call.start()
        wait_until_waiting_for_a_lock(procedure.info.backend_pid)
        recording = threading.Thread(target=record_the_capture)
        recording.start()
        assert recorder_connected.wait(30), "the recorder never connected"
        assert "error" not in recorder, recorder.get("error")
        wait_until_waiting_for_a_lock(recorder["pid"])
        holder.rollback()
        call.join(30)
        recording.join(30)
    finally:
        holder.close()
        procedure.close()

    assert "error" not in recorder, recorder.get("error")
    assert result == {"released": 1}
    assert (status_of(order), stock(level)) == ("failed", (5, 0))
    assert payment_rows(order) == ["captured", "refund_pending"]

    report = checkout_recover(captured_after=AT_ONCE)

    assert (report.refunded, report.failures) == (1, [])
    assert payment_rows(order) == ["captured", "refunded"]
    assert_money_balances()


def test_recovery_refunds_a_failed_order_left_holding_a_capture(gateway):
    """What a release that read its batch once left behind: failed, captured,
    no refund row."""
    level, order = interrupted_checkout()
    age(order, timedelta(hours=1))
    record(order, Payment.Status.NOT_CAPTURED)
    with connection.cursor() as cursor:
        cursor.execute(CALL, [STALE])
    capture = payments.charge(
        token="tok_ok", amount=order.total, reference=order.payment_reference
    )
    with as_staff():
        Payment.objects.filter(order=order).update(
            status=Payment.Status.CAPTURED, gateway_reference=capture.reference
        )

    report = checkout_recover()

    assert (report.refunded, report.failures) == (1, [])
    assert payment_rows(order) == ["captured", "refunded"]
    assert (status_of(order), stock(level)) == ("failed", (5, 0))
    assert_money_balances()
    checkout_recover()
    assert gateway.count("refund", order.payment_reference) == 1


# M2: one order, or one step, that fails


def test_one_order_that_fails_is_reported_and_the_others_are_settled(monkeypatch):
    _, broken = interrupted_checkout()
    _, fine = interrupted_checkout()
    stale_level, stale = interrupted_checkout()
    for order in (broken, fine):
        record(order, Payment.Status.CAPTURED, gateway_reference="gw")
        age(order, timedelta(minutes=5))
    age(stale, timedelta(hours=1))
    real_settle = recovery.order_settle

    def settle_all_but_one(order, **kwargs):
        if order.pk == broken.pk:
            raise RuntimeError("a bug that only this order meets")
        return real_settle(order, **kwargs)

    monkeypatch.setattr(recovery, "order_settle", settle_all_but_one)

    report = checkout_recover()

    assert (report.finished, report.released) == (1, 1)
    assert len(report.failures) == 1
    assert f"order {broken.pk}" in report.failures[0]
    assert "a bug that only this order meets" in report.failures[0]
    assert [status_of(o) for o in (broken, fine, stale)] == [
        "pending",
        "paid",
        "failed",
    ]
    assert stock(stale_level) == (5, 0)


def test_a_step_that_fails_does_not_stop_the_steps_after_it(monkeypatch):
    _, _, client = buyer()
    cancelled = order_in(checkout(client, payment="tok_refund_timeout"))
    assert cancel(client, cancelled).status_code == 200
    age(cancelled, timedelta(hours=1))

    def broken(*args):
        raise RuntimeError("the procedure is missing")

    monkeypatch.setattr(recovery, "_release_stale", broken)

    report = checkout_recover()

    assert report.failures == [
        "release stale checkouts: RuntimeError: the procedure is missing"
    ]
    # The refund, two steps later, was still made.
    assert payment_rows(cancelled) == ["captured", "refunded"]
    with pytest.raises(CommandError, match="the procedure is missing"):
        call_command("checkout_recover")


def test_one_order_the_release_procedure_cannot_release_is_skipped_not_a_jam():
    """A CHECK that one order's release breaks fails that order, not the CALL.

    The coupon's count says no use is left to give back while the order
    holds a redemption of it (a count put wrong by hand, or by a bug):
    returning the use would take times_used below 0. Before each order had
    a block of its own, that aborted the whole CALL at the same batch on
    every run, and no stale order behind it was ever released.
    """
    coupon = CouponFactory(code="MISCOUNTED")
    first_level, first = interrupted_checkout()
    _, broken = interrupted_checkout(coupon="MISCOUNTED")
    last_level, last = interrupted_checkout()
    Coupon.objects.filter(pk=coupon.pk).update(times_used=0)
    for order in (first, broken, last):
        record(order, Payment.Status.NOT_CAPTURED)
        age(order, timedelta(hours=1))

    report = checkout_recover()

    assert report.released == 2
    (failure,) = report.failures
    assert f"order {broken.pk} not released (SQLSTATE 23514)" in failure
    assert "orders_coupon_times_used_within_limit" in failure
    assert [status_of(o) for o in (first, broken, last)] == [
        "failed",
        "pending",
        "failed",
    ]
    assert stock(first_level) == stock(last_level) == (5, 0)
    # The broken order's block was undone whole: its stock is still
    # reserved, its redemption and the coupon's count untouched.
    with as_staff():
        assert CouponRedemption.objects.filter(order=broken).exists()
        reserved = StockLevel.objects.filter(
            variant__order_lines__order=broken
        ).values_list("reserved", flat=True)
        assert list(reserved) == [2]
    coupon.refresh_from_db()
    assert coupon.times_used == 0
    # Every run reports it again, and still ends.
    again = checkout_recover()
    assert (again.released, len(again.failures)) == (0, 1)


# M4: how often, and how much, the gateway is asked


def test_an_order_whose_answer_stays_in_doubt_is_asked_ever_less_often(
    gateway, settings
):
    settings.CHECKOUT_RECOVER_ASK_BACKOFF = timedelta(minutes=10)
    settings.CHECKOUT_RECOVER_ASK_BACKOFF_MAX = timedelta(minutes=30)

    def gateway_down(call):
        if call.name == "charge_status":
            raise payments.GatewayTimeout("no answer")

    gateway.also(gateway_down)
    _, order = interrupted_checkout()
    age(order, timedelta(minutes=5))
    reference = order.payment_reference

    def asked_after(minutes_since_last_ask):
        with as_staff():
            Payment.objects.filter(order=order).update(
                gateway_asked_at=timezone.now()
                - timedelta(minutes=minutes_since_last_ask)
            )
        before = gateway.count("charge_status", reference)
        checkout_recover()
        return gateway.count("charge_status", reference) - before

    assert asked_after(0) == 1  # never asked: now (and the row says so)
    with as_staff():
        assert Payment.objects.get(order=order).gateway_asks == 1
    assert [asked_after(9), asked_after(10)] == [0, 1]  # then 10 minutes
    assert [asked_after(19), asked_after(20)] == [0, 1]  # then 20
    assert [asked_after(29), asked_after(30)] == [0, 1]  # then the cap: 30
    assert [asked_after(29), asked_after(30)] == [0, 1]
    assert status_of(order) == "pending"
    with as_staff():
        assert Payment.objects.get(order=order).gateway_asks == 5


def test_a_released_order_is_asked_about_a_few_times_a_day_not_every_run(gateway):
    _, order = interrupted_checkout()
    age(order, timedelta(hours=1))
    checkout_recover()  # asked once: not found, released
    assert status_of(order) == "failed"
    reference = order.payment_reference

    # A day of five-minute runs, the clock moved by hand: the wait after
    # each ask doubles, from a minute up to six hours.
    with as_staff():
        row = Payment.objects.filter(order=order)
    for _ in range(288):
        with as_staff():
            row.update(
                gateway_asked_at=row.get().gateway_asked_at - timedelta(minutes=5)
            )
        checkout_recover()

    asks = gateway.count("charge_status", reference)
    assert 8 <= asks <= 14, asks
    with as_staff():
        assert row.get().gateway_asks == asks


def test_one_run_asks_about_at_most_a_batch_of_orders(gateway, settings):
    settings.CHECKOUT_RECOVER_ASK_BATCH = 2
    pending = [interrupted_checkout()[1] for _ in range(3)]
    for order in pending:
        age(order, timedelta(minutes=5))

    first = checkout_recover()
    second = checkout_recover()

    assert (first.asked, second.asked) == (2, 1)
    assert sorted(gateway.references("charge_status").values()) == [1, 1, 1]


# M5: races, held inside the gateway


def test_two_recovery_runs_at_once_ask_about_each_order_once(gateway):
    orders_in_doubt = [interrupted_checkout()[1] for _ in range(3)]
    for order in orders_in_doubt:
        age(order, timedelta(hours=1))
    first_inside, second_done = threading.Event(), threading.Event()

    def hold_the_first_lookup(call):
        if call.name == "charge_status" and not first_inside.is_set():
            first_inside.set()
            assert second_done.wait(30), "the second run never finished"

    gateway.also(hold_the_first_lookup)

    def second_run():
        assert first_inside.wait(30), "the first run never asked"
        try:
            return checkout_recover()
        finally:
            second_done.set()

    reports, errors = run_concurrently([checkout_recover, second_run])

    assert errors == [None, None]
    assert [r.failures for r in reports] == [[], []]
    # The first run claimed every order before its first call; the second,
    # running whole while the first waited inside the gateway, asked none.
    assert [r.asked for r in reports] == [3, 0]
    assert set(gateway.references("charge_status").values()) == {1}
    assert sum(r.released for r in reports) == 3


def test_a_cancels_refund_and_recoverys_retry_inside_one_refund_call_record_one(
    gateway,
):
    _, customer, client = buyer()
    order = order_in(checkout(client))
    # The cancel's own refund call and recovery's retry of the same owed
    # refund meet inside the gateway's refund, each waiting for the other.
    gateway.also(HoldAll("refund", 2, reference=order.payment_reference))

    def cancel_it():
        return cancel(client_for(customer), order).status_code

    def recover_once_the_refund_is_owed():
        deadline = time.monotonic() + 30
        while payment_rows(order) != ["captured", "refund_pending"]:
            assert time.monotonic() < deadline, "the cancel never owed its refund"
            time.sleep(0.01)
        return checkout_recover(older_than=AT_ONCE, captured_after=AT_ONCE)

    (cancelled, report), errors = run_concurrently(
        [cancel_it, recover_once_the_refund_is_owed]
    )

    assert errors == [None, None]
    assert cancelled == 200
    assert gateway.count("refund", order.payment_reference) == 2
    assert len(refunds()) == 1
    assert payment_rows(order) == ["captured", "refunded"]
    assert report.refunded in (0, 1)  # whichever recorded it first
    assert_money_balances()


@pytest.mark.parametrize("attempt", range(4))
def test_phase_3_racing_recoverys_finish_sells_the_order_once(attempt):
    level = StockLevelFactory(quantity_on_hand=5)
    item = CartItemFactory(variant=level.variant, quantity=2)
    customer_id = item.cart.customer_id
    key = idempotency.idempotency_key_claim(
        customer_id=customer_id, key="k", fingerprint="f"
    )
    placed = _reserve(customer_id, key.key_id, SHIPPING, None)
    outcome = _charge(placed.order, "tok_ok")
    _record(customer_id, placed.order, outcome)
    age(placed.order, timedelta(minutes=5))

    (settled, finished), errors = run_concurrently(
        [
            lambda: _settle(customer_id, key.key_id, placed, outcome),
            lambda: recovery._finish_one(placed.order.pk),
        ]
    )

    assert errors == [None, None]
    assert (status_of(placed.order), stock(level)) == ("paid", (3, 0))
    sales = StockMovement.objects.filter(order=placed.order, reason="sale")
    assert [m.on_hand_delta for m in sales] == [-2]
    with as_staff():
        stored = IdempotencyKey.objects.get(pk=key.key_id)
    assert (stored.status, stored.response_status) == ("completed", 201)
    assert stored.response_body["id"] == placed.order.pk
    # Phase 3 answers what is stored with the key, whoever stored it.
    answer = settled.outcome
    body = answer.body
    assert body == stored.response_body
    assert finished in ("finished", None)
    assert_money_balances()


def test_a_checkout_that_died_after_recording_its_capture_is_finished(gateway):
    level, customer, client = buyer()
    body = {"shipping_address": ADDRESS, "payment_token": "tok_ok"}
    key = idempotency.idempotency_key_claim(
        customer_id=customer.pk, key="k", fingerprint=request_fingerprint(body)
    )
    placed = _reserve(customer.pk, key.key_id, SHIPPING, None)
    outcome = _charge(placed.order, "tok_ok")
    _record(customer.pk, placed.order, outcome)
    # ...and the process dies before phase 3: no _settle.
    assert checkout(client, key="k").status_code == 409  # still in use
    age(placed.order, timedelta(minutes=2))

    assert checkout_recover().finished == 1

    assert (status_of(placed.order), stock(level)) == ("paid", (3, 0))
    replay = checkout(client, key="k")
    assert (replay.status_code, replay.json()["id"]) == (201, placed.order.pk)
    assert gateway.count("charge", placed.order.payment_reference) == 1
    assert_money_balances()


def test_a_late_phase_3_keeps_the_answer_recovery_stored_even_after_a_cancel(
    gateway,
):
    level, customer, client = buyer()
    body = {"shipping_address": ADDRESS, "payment_token": "tok_ok"}
    key = idempotency.idempotency_key_claim(
        customer_id=customer.pk, key="k", fingerprint=request_fingerprint(body)
    )
    placed = _reserve(customer.pk, key.key_id, SHIPPING, None)
    outcome = _charge(placed.order, "tok_ok")
    _record(customer.pk, placed.order, outcome)
    age(placed.order, timedelta(minutes=2))
    assert checkout_recover().finished == 1
    first = checkout(client, key="k").json()
    assert cancel(client, placed.order).status_code == 200

    late = _settle(customer.pk, key.key_id, placed, outcome)

    assert late.outcome == Replay(201, first)
    assert not late.refund_owed
    assert checkout(client, key="k").json() == first
    assert payment_rows(placed.order) == ["captured", "refunded"]
    assert gateway.count("refund", placed.order.payment_reference) == 1
    assert_money_balances()


# B2: a refund the gateway refuses


def paid_order_the_gateway_never_saw():
    """Paid before the gateway kept a ledger (or seeded before it was told)."""
    now = timezone.now()
    return OrderFactory(status="paid", created_at=now - timedelta(hours=2), paid_at=now)


def test_a_refund_the_gateway_refuses_fails_for_staff_and_is_never_retried(
    gateway, caplog
):
    order = paid_order_the_gateway_never_saw()
    with as_staff():
        Payment.objects.create(
            order=order, amount=order.total, status="captured", gateway_reference=""
        )
    client = client_for(order.customer)

    response = cancel(client, order)

    assert response.status_code == 200
    assert payment_rows(order) == ["captured", "refund_failed"]
    assert "refund_failed" in caplog.text
    age(order, timedelta(hours=1))
    for _ in range(3):
        assert checkout_recover().failures == []
    assert gateway.count("refund", order.payment_reference) == 1
    staff = Client()
    staff.force_login(UserFactory(is_staff=True, is_superuser=True))
    page = staff.get("/admin/orders/payment/?status__exact=refund_failed")
    assert page.status_code == 200
    assert b"refund_failed" in page.content and b"1 payment" in page.content


def test_a_seeded_paid_order_can_be_cancelled_and_refunded(gateway):
    call_command("seed", scale="small", stdout=io.StringIO(), stderr=io.StringIO())
    with as_staff():
        seeded = Order.objects.filter(status="paid").order_by("id").first()
        settled = Payment.objects.filter(status__in=["captured", "refunded"])
        expected = {(p.order.payment_reference, p.status) for p in settled}
    filed = {
        (e.reference, "captured" if e.kind == "charge" else "refunded")
        for e in ledger()
    }
    assert filed == expected

    order = recovery.order_cancel(customer_id=seeded.customer_id, order_id=seeded.pk)

    assert order.status == "cancelled"
    assert payment_rows(seeded) == ["captured", "refunded"]
    (refund,) = refunds(seeded.payment_reference)
    assert refund.amount == seeded.total
    # The same seed again files nothing new: the gateway knew it all.
    assert (
        payments.history_record(
            [
                payments.HistoryEntry(
                    "charge", e.reference, e.outcome, e.amount, e.gateway_reference
                )
                for e in captures()
            ]
        )
        == 0
    )


def test_a_reset_forgets_the_seeded_history_so_a_reseeded_order_is_refunded_anew(
    gateway,
):
    quiet = {"stdout": io.StringIO(), "stderr": io.StringIO()}
    call_command("seed", scale="small", **quiet)
    with as_staff():
        seeded = Order.objects.filter(status="paid").order_by("id").first()
    recovery.order_cancel(customer_id=seeded.customer_id, order_id=seeded.pk)
    (before_the_reset,) = refunds(seeded.payment_reference)

    # The same seed again: the same order, paid, under the same reference
    # (its id may differ: the reset restarts the ids this test's database
    # had moved on).
    call_command("seed", scale="small", reset=True, **quiet)

    with as_staff():
        again = Order.objects.get(payment_reference=seeded.payment_reference)
        settled = Payment.objects.filter(status__in=["captured", "refunded"])
        expected = {(p.order.payment_reference, p.status) for p in settled}
    assert (again.status, again.total) == ("paid", seeded.total)
    # The gateway holds the new seed's history and nothing of the old one,
    # the refund made before the reset included.
    filed = {
        (e.reference, "captured" if e.kind == "charge" else "refunded")
        for e in ledger()
    }
    assert filed == expected
    assert refunds(seeded.payment_reference) == []

    order = recovery.order_cancel(customer_id=again.customer_id, order_id=again.pk)

    assert order.status == "cancelled"
    assert payment_rows(again) == ["captured", "refunded"]
    (refund,) = refunds(seeded.payment_reference)
    assert refund.gateway_reference != before_the_reset.gateway_reference
    assert refund.amount == again.total
    assert gateway.count("refund", seeded.payment_reference) == 2


# M1: references that outlive their database


def test_a_capture_left_under_an_old_order_id_pays_for_no_new_order(gateway):
    level, _, client = buyer()
    order = order_in(checkout(client, payment="tok_fail_before_capture"))
    # An earlier database (before `seed --reset`, or another test run) paid
    # an order that had this id, for the same total, under the reference
    # ids used to give: `order-<id>`.
    old = f"order-{order.pk}"
    payments.charge(token="tok_ok", amount=order.total, reference=old)
    age(order, timedelta(hours=1))

    checkout_recover()

    assert (status_of(order), stock(level)) == ("failed", (5, 0))
    assert payment_rows(order) == ["not_captured"]
    assert gateway.count("charge_status", old) == 0
    assert gateway.count("charge_status", order.payment_reference) >= 1


def test_every_order_gets_a_reference_of_its_own():
    made = [OrderFactory() for _ in range(3)]
    with as_staff():
        references = dict(Order.objects.values_list("pk", "payment_reference"))
    assert references == {order.pk: order.payment_reference for order in made}
    assert len(set(references.values())) == 3
    assert all(str(uuid.UUID(r)) == r for r in references.values())
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT column_default FROM information_schema.columns "
            "WHERE table_name = 'orders_order' AND column_name = 'payment_reference'"
        )
        # For rows written by raw SQL, the labs': the database draws one too.
        assert "gen_random_uuid()" in cursor.fetchone()[0]


def test_a_capture_of_another_amount_is_refunded_not_sold(gateway):
    level, order = interrupted_checkout()
    taken = order.total + Decimal("5.00")
    payments.charge(token="tok_ok", amount=taken, reference=order.payment_reference)
    age(order, timedelta(minutes=5))

    report = checkout_recover()

    assert (report.finished, report.released, report.refunded) == (0, 1, 1)
    assert (status_of(order), stock(level)) == ("failed", (5, 0))
    with as_staff():
        rows = sorted(
            Payment.objects.filter(order=order).values_list("status", "amount")
        )
    assert rows == [("captured", taken), ("refunded", taken)]
    (refund,) = refunds(order.payment_reference)
    assert refund.amount == taken


def test_a_charge_the_gateway_refuses_is_unknown_and_its_capture_refunded(gateway):
    level, order = interrupted_checkout()
    # The reference was charged another amount already: the gateway says no
    # to this charge, while it holds that capture.
    taken = order.total + 1
    payments.charge(token="tok_ok", amount=taken, reference=order.payment_reference)

    outcome = _charge(order, "tok_ok")

    # Not a decline, which would release the order and strand the capture.
    assert outcome == ChargeOutcome(Payment.Status.UNKNOWN)
    _record(order.customer_id, order, outcome)
    assert (status_of(order), stock(level)) == ("pending", (5, 2))
    age(order, timedelta(minutes=5))

    report = checkout_recover()

    assert (report.released, report.refunded, report.failures) == (1, 1, [])
    assert (status_of(order), stock(level)) == ("failed", (5, 0))
    with as_staff():
        rows = sorted(
            Payment.objects.filter(order=order).values_list("status", "amount")
        )
    assert rows == [("captured", taken), ("refunded", taken)]
    assert gateway.count("refund", order.payment_reference) == 1
    assert_money_balances()


# N2: a key told to wait


def test_a_key_told_to_wait_for_another_checkout_can_be_retried(settings):
    level, _, client = buyer()
    second = {}

    def double_click(call):
        if call.name == "charge" and "response" not in second:
            second["response"] = checkout(client, key="second")

    settings.PAYMENT_GATEWAY_HOOK = double_click
    first = checkout(client, key="first")
    settings.PAYMENT_GATEWAY_HOOK = None

    assert first.status_code == 201
    assert second["response"].json()["code"] == "checkout_in_progress"
    with as_staff():
        assert not IdempotencyKey.objects.filter(key="second").exists()
    # The same key again is a new request, not the stored "wait": the first
    # checkout bought the cart, so there is nothing left to buy.
    retry = checkout(client, key="second")
    assert (retry.status_code, retry.json()["code"]) == (400, "cart_empty")
    # One checkout bought the cart's two units; the refused one reserved none.
    assert stock(level) == (3, 0)
    with as_staff():
        assert list(Order.objects.values_list("status", flat=True)) == ["paid"]


def test_the_pending_answer_says_when_and_how_recovery_runs():
    _, _, client = buyer()

    detail = checkout(client, payment="tok_timeout_after_capture").json()["detail"]

    assert "every 5 minutes" in detail
    assert "python manage.py checkout_recover" in detail


def test_services_settle_returns_outcomes_not_statuses():
    _, order = interrupted_checkout()
    with job_transaction("test"):
        locked = settle.locks.order_lock(order_id=order.pk)
        refused = settle.order_settle(locked, approved=False)

    assert refused.code == "payment_declined"
    assert refused.extra == {"order_id": order.pk}
