"""Concurrency claims, proven with real concurrent connections (threads).

Every test here starts its racers at one barrier, each thread with its own
PostgreSQL connection, and checks the invariants in the database afterwards.
"""

import threading
import uuid

import pytest
from django.db import connection, connections
from django.db.models import F, Sum
from django.test import override_settings
from rest_framework.test import APIClient

from catalog.models import StockLevel
from orders.labs import strategies
from orders.models import (
    CouponRedemption,
    IdempotencyKey,
    Order,
    Payment,
    StockMovement,
)
from tests.catalog.factories import StockLevelFactory, VariantFactory, WarehouseFactory
from tests.concurrency import one_shot, run_concurrently
from tests.dbs import ALL_DATABASES, as_staff
from tests.orders.conftest import ADDRESS, client_for
from tests.orders.factories import (
    CartFactory,
    CartItemFactory,
    CouponFactory,
    OrderFactory,
)

pytestmark = [
    pytest.mark.concurrency,
    pytest.mark.django_db(transaction=True, databases=ALL_DATABASES),
]

UNITS = 5
BUYERS = 12


def buyers_with(variant, count, quantity=1):
    """`count` customers, each with `quantity` units of `variant` in the cart."""
    clients = []
    for _ in range(count):
        item = CartItemFactory(variant=variant, quantity=quantity)
        clients.append(client_for(item.cart.customer))
    return clients


def checkout_call(client, key=None, token="tok_ok"):
    body = {"shipping_address": ADDRESS, "payment_token": token}
    key = key or str(uuid.uuid4())
    return lambda: client.post(
        "/api/v1/checkout/", body, format="json", HTTP_IDEMPOTENCY_KEY=key
    )


def server_deadlocks():
    """Deadlocks PostgreSQL has detected in this database so far."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_stat_clear_snapshot()")
        cursor.execute(
            "SELECT deadlocks FROM pg_stat_database WHERE datname = current_database()"
        )
        return cursor.fetchone()[0]


def assert_ledger_matches(level):
    level.refresh_from_db()
    totals = StockMovement.objects.filter(stock_level=level).aggregate(
        on_hand=Sum("on_hand_delta"), reserved=Sum("reserved_delta")
    )
    assert (totals["on_hand"], totals["reserved"]) == (
        level.quantity_on_hand,
        level.reserved,
    )


def test_checkout_never_sells_more_than_stock():
    level = StockLevelFactory(quantity_on_hand=UNITS)
    clients = buyers_with(level.variant, BUYERS)

    responses, errors = run_concurrently([checkout_call(c) for c in clients])

    assert errors == [None] * BUYERS
    statuses = sorted(r.status_code for r in responses)
    assert statuses == [201] * UNITS + [409] * (BUYERS - UNITS)
    assert {r.json()["code"] for r in responses if r.status_code == 409} == {
        "insufficient_stock"
    }
    level.refresh_from_db()
    assert (level.quantity_on_hand, level.reserved) == (0, 0)
    with as_staff():
        assert Order.objects.filter(status="paid").count() == UNITS
    assert_ledger_matches(level)


@pytest.mark.parametrize("name", strategies.CORRECT_STRATEGIES)
def test_every_taught_strategy_reserves_exactly_the_stock(name):
    level = StockLevelFactory(quantity_on_hand=UNITS)
    reserve = strategies.STRATEGIES[name]

    results, errors = run_concurrently(
        [lambda: reserve(level_id=level.pk, quantity=1) for _ in range(BUYERS)]
    )

    assert errors == [None] * BUYERS
    assert results.count(True) == UNITS
    level.refresh_from_db()
    assert (level.quantity_on_hand, level.reserved) == (UNITS, UNITS)
    assert_ledger_matches(level)


def test_the_naive_read_modify_write_is_caught_overselling():
    """The same race against the broken strategy: the test can fail, and does."""
    level = StockLevelFactory(quantity_on_hand=UNITS)
    everyone_has_read = threading.Barrier(BUYERS)

    results, errors = run_concurrently(
        [
            lambda: strategies.reserve_naive(
                level_id=level.pk, quantity=1, pause=everyone_has_read.wait
            )
            for _ in range(BUYERS)
        ]
    )

    assert errors == [None] * BUYERS
    level.refresh_from_db()
    promised = results.count(True)
    assert promised > UNITS  # oversold: more reservations promised than units
    assert level.reserved < promised  # and the count lost the other updates


def test_lost_update_with_read_modify_write_but_not_with_f():
    naive = StockLevelFactory(quantity_on_hand=0)
    atomic = StockLevelFactory(
        quantity_on_hand=0, variant=VariantFactory(), warehouse=naive.warehouse
    )
    all_read = threading.Barrier(BUYERS)

    def naive_restock():
        current = StockLevel.objects.get(pk=naive.pk).quantity_on_hand
        all_read.wait()
        StockLevel.objects.filter(pk=naive.pk).update(quantity_on_hand=current + 1)

    def f_restock():
        StockLevel.objects.filter(pk=atomic.pk).update(
            quantity_on_hand=F("quantity_on_hand") + 1
        )

    _, errors = run_concurrently([naive_restock] * BUYERS + [f_restock] * BUYERS)

    assert errors == [None] * (2 * BUYERS)
    naive.refresh_from_db()
    atomic.refresh_from_db()
    assert naive.quantity_on_hand < BUYERS  # updates were lost
    assert atomic.quantity_on_hand == BUYERS  # every increment counted


def test_opposite_sku_orders_in_multi_line_carts_never_deadlock():
    warehouse = WarehouseFactory()
    first = StockLevelFactory(quantity_on_hand=100, warehouse=warehouse)
    second = StockLevelFactory(quantity_on_hand=100, warehouse=warehouse)
    clients = []
    for i in range(10):
        cart = CartFactory()
        # Half add A then B, half B then A: the lock order must not follow them.
        pair = (first, second) if i % 2 else (second, first)
        CartItemFactory(cart=cart, variant=pair[0].variant, quantity=2)
        CartItemFactory(cart=cart, variant=pair[1].variant, quantity=3)
        clients.append(client_for(cart.customer))

    deadlocks_before = server_deadlocks()
    responses, errors = run_concurrently([checkout_call(c) for c in clients])

    assert errors == [None] * len(clients)
    assert [r.status_code for r in responses] == [201] * len(clients)
    # Not one deadlock even happened (retries would have hidden it).
    assert server_deadlocks() == deadlocks_before
    for level in (first, second):
        level.refresh_from_db()
        assert level.reserved == 0
        assert_ledger_matches(level)
    first.refresh_from_db()
    second.refresh_from_db()
    assert first.quantity_on_hand + second.quantity_on_hand == 200 - 10 * 5


def test_concurrent_duplicates_with_one_key_make_one_order():
    level = StockLevelFactory(quantity_on_hand=UNITS)
    (client,) = buyers_with(level.variant, 1)

    responses, errors = run_concurrently(
        [checkout_call(client, key="same") for _ in range(6)]
    )

    assert errors == [None] * 6
    with as_staff():
        assert Order.objects.count() == 1
    statuses = [r.status_code for r in responses]
    assert statuses.count(201) >= 1
    assert set(statuses) <= {201, 409}
    for response in responses:
        if response.status_code == 409:
            assert response.json()["code"] == "idempotency_key_in_use"
    with as_staff():
        assert IdempotencyKey.objects.get().status == "completed"


class GatewayGate:
    """Holds one named thread inside the payment gateway until released."""

    def __init__(self, thread_name):
        self.thread_name = thread_name
        self.entered = threading.Event()
        self.release = threading.Event()
        self.holds_a_connection = None

    def __call__(self, call):
        if threading.current_thread().name != self.thread_name:
            return
        # The checkout gave its pooled connection back before calling the
        # gateway: this thread holds none while it waits.
        self.holds_a_connection = connection.connection is not None
        self.entered.set()
        assert self.release.wait(30), "the test never released the gateway"


def idle_in_transaction():
    """Sessions of this database in an open transaction doing nothing."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FROM pg_stat_activity "
            "WHERE datname = current_database() AND state LIKE 'idle in transaction%%'"
        )
        return cursor.fetchone()[0]


def test_a_slow_gateway_holds_no_lock_so_others_buy_the_same_sku(settings):
    level = StockLevelFactory(quantity_on_hand=UNITS)
    slow_client, fast_client = buyers_with(level.variant, 2)
    gate = GatewayGate("slow-buyer")
    settings.PAYMENT_GATEWAY_HOOK = gate
    slow_result = {}
    slow = threading.Thread(
        target=lambda: slow_result.update(response=checkout_call(slow_client)()),
        name="slow-buyer",
    )
    slow.start()
    try:
        assert gate.entered.wait(30), "the slow checkout never reached the gateway"
        # Phase 2 runs outside a transaction and without a connection: the
        # checkout holds none, and no session of this database sits in an
        # open transaction (whose locks the fast buyer would wait for).
        assert gate.holds_a_connection is False
        assert idle_in_transaction() == 0
        fast = checkout_call(fast_client)()
        assert fast.status_code == 201, fast.json()
    finally:
        gate.release.set()
        slow.join(30)
    assert slow_result["response"].status_code == 201
    level.refresh_from_db()
    assert (level.quantity_on_hand, level.reserved) == (UNITS - 2, 0)


def in_use(stats) -> int:
    """Connections of the pool handed out and not returned yet."""
    return stats["pool_size"] - stats["pool_available"]


def held_in_the_gateway(settings, name, requests):
    """Run `requests` in threads, each held inside its gateway call `name`.

    While every one of them waits inside the gateway, check that they hold
    no more pooled connections than were in use before they started, and
    that another request still gets one. Return their responses.
    """
    inside, release = threading.Semaphore(0), threading.Event()

    def hold(call):
        if call.name != name:
            return
        inside.release()
        assert release.wait(30), "the test never released the gateway"

    settings.PAYMENT_GATEWAY_HOOK = hold
    pool = connection.pool
    results = {}
    threads = [
        threading.Thread(
            target=lambda i=i, r=r: (
                results.__setitem__(i, r()),
                connections.close_all(),
            )
        )
        for i, r in enumerate(requests)
    ]
    before = pool.get_stats()
    for thread in threads:
        thread.start()
    try:
        for _ in requests:
            assert inside.acquire(timeout=30), f"a request never reached {name}()"
        during = pool.get_stats()
        # Every request inside the gateway, and not one more connection
        # taken from the pool than before they started (it was one each).
        assert in_use(during) <= in_use(before), (before, during)
        assert APIClient().get("/api/v1/categories/").status_code == 200
    finally:
        release.set()
        for thread in threads:
            thread.join(30)
    return [results[i] for i in range(len(requests))]


def test_checkouts_waiting_for_the_gateway_leave_the_pool_to_others(settings):
    """Slow charges hold no pooled connection, so catalogue reads still get one."""
    level = StockLevelFactory(quantity_on_hand=UNITS * 2)
    clients = buyers_with(level.variant, 5)

    responses = held_in_the_gateway(
        settings, "charge", [checkout_call(c) for c in clients]
    )

    assert [r.status_code for r in responses] == [201] * 5


def test_cancels_waiting_for_their_refund_leave_the_pool_to_others(settings):
    """Slow refunds hold no pooled connection either: a cancel waits for one
    after its transaction committed, as long as a charge may take."""
    level = StockLevelFactory(quantity_on_hand=UNITS * 2)
    clients = buyers_with(level.variant, 5)
    paid = [checkout_call(c)().json()["id"] for c in clients]

    responses = held_in_the_gateway(
        settings,
        "refund",
        [
            (lambda c=c, o=o: c.post(f"/api/v1/orders/{o}/cancel/"))
            for c, o in zip(clients, paid, strict=True)
        ],
    )

    assert [r.status_code for r in responses] == [200] * 5
    with as_staff():
        statuses = Payment.objects.filter(order_id__in=paid).values_list(
            "status", flat=True
        )
        assert sorted(statuses) == ["captured"] * 5 + ["refunded"] * 5


@pytest.mark.parametrize(
    "isolation, redemptions",
    [("read committed", 2), ("repeatable read", 2), ("serializable", 1)],
)
def test_write_skew_on_a_counted_coupon_limit(isolation, redemptions):
    coupon = CouponFactory(usage_limit=1)
    orders = [OrderFactory(), OrderFactory()]
    both_counted = threading.Barrier(2)

    results, errors = run_concurrently(
        [
            lambda o=o: strategies.coupon_redeem_by_count(
                coupon_id=coupon.pk,
                order_id=o.pk,
                customer_id=o.customer_id,
                isolation=isolation,
                pause=one_shot(both_counted.wait),
            )
            for o in orders
        ]
    )

    assert errors == [None, None]
    with as_staff():
        assert CouponRedemption.objects.filter(coupon=coupon).count() == redemptions
    assert results.count(True) == redemptions


@override_settings(PAYMENT_GATEWAY_HOOK=None)
def test_the_coupon_limit_in_checkout_holds_under_a_race():
    coupon = CouponFactory(code="LAST", usage_limit=3)
    level = StockLevelFactory(quantity_on_hand=50)
    clients = buyers_with(level.variant, 8)
    body = {"shipping_address": ADDRESS, "payment_token": "tok_ok", "coupon": "LAST"}

    responses, errors = run_concurrently(
        [
            (
                lambda c=c: c.post(
                    "/api/v1/checkout/",
                    body,
                    format="json",
                    HTTP_IDEMPOTENCY_KEY=str(uuid.uuid4()),
                )
            )
            for c in clients
        ]
    )

    assert errors == [None] * 8
    assert [r.status_code for r in responses] == [201] * 8
    discounted = [r for r in responses if r.json()["discount"] != "0.00"]
    assert len(discounted) == 3
    coupon.refresh_from_db()
    assert coupon.times_used == 3
