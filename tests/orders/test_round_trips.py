"""What the leaner checkout relies on (issue 9): the context riding in a
statement, commits that do or do not wait for the disk, the charge's record
and its fallback, the gateway's kept connection. The statement count itself
is pinned in test_checkout_api.py."""

import threading
import time

import psycopg
import pytest
from django.db import connection, connections

from orders import locks, payments
from orders.models import Order, Payment
from orders.services.checkout import _record
from orders.services.settle import ChargeOutcome
from shop.db_context import (
    Context,
    customer_statement,
    customer_transaction,
    job_transaction,
    staff_transaction,
)
from tests.dbs import ALL_DATABASES, as_staff
from tests.orders.conftest import checkout
from tests.orders.gateway import assert_money_balances
from tests.orders.test_checkout_api import first_line, statements_on_every_alias
from tests.orders.test_payments import buyer, payment_rows
from tests.orders.test_plpgsql import interrupted_checkout

pytestmark = pytest.mark.django_db(transaction=True, databases=ALL_DATABASES)

# Plans the planner may pick for the first statement of a phase, each made
# the only one it may take: a context carried by the statement must hold in
# all of them, not in the one the planner happens to like today.
PLANNER_CHOICES = [
    {},
    {"enable_nestloop": "off"},
    {"enable_seqscan": "off"},
    {"enable_indexscan": "off", "enable_bitmapscan": "off"},
    {"enable_hashjoin": "off", "enable_mergejoin": "off"},
]


@pytest.mark.parametrize("planner", PLANNER_CHOICES, ids=str)
def test_a_lock_that_carries_the_context_sees_the_customers_cart_under_any_plan(
    planner,
):
    item_level, order = interrupted_checkout()
    customer_id = order.customer_id
    with customer_transaction(customer_id, in_first_statement=True) as context:
        with connection.cursor() as cursor:
            for name, value in planner.items():
                # Session-level on purpose, and undone below: the context
                # must be set by the statement under test, not before it.
                cursor.execute("SELECT set_config(%s, %s, false)", [name, value])
        cart = locks.cart_lock(customer_id=customer_id, context=context)
        phase_3, levels = locks.order_and_stock_lock(
            order_id=order.pk, variant_ids=[item_level.variant_id], context=context
        )
    with connection.cursor() as cursor:
        for name in planner:
            cursor.execute("SELECT set_config(%s, 'on', false)", [name])

    assert cart is not None and cart.customer_id == customer_id
    assert phase_3.pk == order.pk and [lv.id for lv in levels] == [item_level.pk]


def test_without_its_context_the_first_statement_acts_for_nobody():
    _, order = interrupted_checkout()
    nobody = Context({})  # no settings to carry

    with customer_transaction(order.customer_id, in_first_statement=True):
        # A first statement that forgot the settings: row-level security
        # shows it no cart and no order, rather than someone else's.
        assert locks.cart_lock(customer_id=order.customer_id, context=nobody) is None
        assert locks.order_and_stock_lock(
            order_id=order.pk, variant_ids=[1], context=nobody
        ) == (None, [])


def test_a_statement_carrying_the_context_inside_a_transaction_restores_the_outer():
    _, order = interrupted_checkout()
    with staff_transaction():
        with customer_statement(order.customer_id) as context:
            assert locks.cart_lock(customer_id=order.customer_id, context=context)
        with connection.cursor() as cursor:
            cursor.execute("SELECT current_setting('app.is_staff', true)")
            assert cursor.fetchone() == ("on",)


def test_only_the_claim_and_the_charges_record_commit_without_waiting_for_the_disk(
    gateway,
):
    _, _, client = buyer()

    with statements_on_every_alias() as captured:
        assert checkout(client).status_code == 201

    relaxed = [first_line(sql) for _, sql in captured if "synchronous_commit" in sql]
    # Phase 1 must be on disk before the gateway is asked for money, and
    # phase 3 before the client hears "paid": both keep the server's
    # synchronous commit. The key's claim and the charge's record are made
    # durable by them (WAL is flushed in order), or, lost in a crash, harm
    # nothing (orders/services/idempotency.py, orders/services/checkout.py).
    assert relaxed == [
        "INSERT INTO orders_idempotency_key",
        "WITH locked AS (",
    ]


def test_the_checkouts_record_upgrades_an_answer_recovery_wrote_first():
    level, order = interrupted_checkout()
    # Recovery found no answer on file and wrote its own, 'unknown', before
    # the checkout's answer came back (payment_ask_note_v01.sql).
    with job_transaction("test"):
        Payment.objects.create(
            order=order, amount=order.total, status=Payment.Status.UNKNOWN
        )
    capture = payments.charge(
        token="tok_ok", amount=order.total, reference=order.payment_reference
    )

    with statements_on_every_alias() as captured:
        _record(
            order.customer_id,
            order,
            ChargeOutcome(Payment.Status.CAPTURED, capture.reference),
        )

    # The cheap statement for a first answer wrote nothing, and the full one
    # replaced the vaguer answer: each alone, in autocommit.
    assert [sql.count("FOR UPDATE") for _, sql in captured] == [1, 1]
    assert payment_rows(order) == ["captured"]


def test_a_capture_recorded_on_a_released_order_owes_its_refund_in_the_same_statement(
    gateway,
):
    level, order = interrupted_checkout()
    with as_staff():
        Order.objects.filter(pk=order.pk).update(status="failed")
    capture = payments.charge(
        token="tok_ok", amount=order.total, reference=order.payment_reference
    )

    _record(
        order.customer_id,
        order,
        ChargeOutcome(Payment.Status.CAPTURED, capture.reference),
    )

    assert payment_rows(order) == ["captured", "refund_pending"]


def backend_of_this_threads_gateway_connection() -> int:
    return payments._Kept.of_this_thread().connection.info.backend_pid


def backends_alive(pids) -> int:
    """How many of these server processes still run, once they had a moment."""
    deadline = time.monotonic() + 10
    while True:
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT count(*) FROM pg_stat_activity WHERE pid = ANY(%s)",
                [list(pids)],
            )
            (alive,) = cursor.fetchone()
        if alive == 0 or time.monotonic() > deadline:
            return alive
        time.sleep(0.05)


def test_the_gateway_keeps_its_connection_between_calls(gateway):
    references = [f"keep-{n}" for n in range(3)]

    payments.charge(token="tok_ok", amount=1, reference=references[0])
    first = backend_of_this_threads_gateway_connection()
    for reference in references[1:]:
        payments.charge(token="tok_ok", amount=1, reference=reference)

    assert backend_of_this_threads_gateway_connection() == first


def test_a_gateway_connection_the_server_dropped_is_replaced_before_a_call(gateway):
    payments.charge(token="tok_ok", amount=1, reference="dropped-1")
    dropped = backend_of_this_threads_gateway_connection()
    with connection.cursor() as cursor:
        # What a server restart or an idle timeout does to it.
        cursor.execute("SELECT pg_terminate_backend(%s)", [dropped])
    time.sleep(0.2)  # the FATAL reaches the socket

    answer = payments.charge(token="tok_ok", amount=1, reference="dropped-2")

    assert answer.approved
    assert backend_of_this_threads_gateway_connection() != dropped


def test_a_gateway_connection_left_idle_is_closed(gateway, monkeypatch):
    monkeypatch.setattr(payments, "KEEPALIVE_EXPIRY", 0.2)
    payments.charge(token="tok_ok", amount=1, reference="idle-1")
    kept = payments._Kept.of_this_thread()
    backend = kept.connection.info.backend_pid

    deadline = time.monotonic() + 10
    while kept.connection is not None and time.monotonic() < deadline:
        time.sleep(0.1)

    assert kept.connection is None
    assert backends_alive([backend]) == 0


def test_each_thread_has_its_own_gateway_connection_closed_when_it_ends(gateway):
    seen = {}

    def call(name):
        payments.charge(token="tok_ok", amount=1, reference=f"thread-{name}")
        seen[name] = backend_of_this_threads_gateway_connection()
        connections.close_all()

    threads = [threading.Thread(target=call, args=(n,)) for n in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)

    assert len(set(seen.values())) == 2
    assert backends_alive(seen.values()) == 0


def test_a_checkout_through_the_kept_connection_balances_the_books(gateway):
    _, _, client = buyer()
    assert checkout(client).status_code == 201
    assert_money_balances()


def test_a_statement_of_the_gateway_that_fails_mid_call_is_no_answer(
    gateway, monkeypatch
):
    payments.charge(token="tok_ok", amount=1, reference="broken-1")
    kept = payments._Kept.of_this_thread()

    def broken(*args, **kwargs):
        raise psycopg.OperationalError("the gateway's store went away mid-call")

    monkeypatch.setattr(kept.connection, "cursor", broken)

    with pytest.raises(payments.GatewayUnavailable):
        payments.charge(token="tok_ok", amount=1, reference="broken-2")
    # Not kept: the next call opens a connection of its own.
    assert kept.connection is None
