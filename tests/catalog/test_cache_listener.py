"""Writes Python never sees still retire the catalog cache's entries.

The triggers of catalog/sql/triggers/cache_notify_v01.sql NOTIFY
catalog_changed when a write commits; the listener (catalog/cache/
listener.py, `manage.py cache_listen`) moves the versions. Committed writes
need transactional tests, each listing `owner` (tests/dbs.py says why).
"""

import json
import time
import uuid
from datetime import timedelta
from decimal import Decimal

import psycopg
import pytest
from django.db import connections

from catalog import cache as catalog_cache
from catalog.cache.listener import CHANNEL, listen_params, start_in_thread
from catalog.models import StockLevel
from orders import payments
from orders.models import Order, Payment
from orders.services.settle import ChargeOutcome, payment_record
from shop.db_context import job_transaction
from tests.catalog.factories import StockLevelFactory
from tests.dbs import ALL_DATABASES, as_staff, wait_for_replica
from tests.orders.conftest import checkout, client_for
from tests.orders.factories import CartItemFactory
from tests.orders.test_payments import age
from tests.orders.test_plpgsql import interrupted_checkout

pytestmark = pytest.mark.django_db(transaction=True, databases=ALL_DATABASES)


@pytest.fixture(autouse=True)
def redis_cache_on():
    if not catalog_cache.enabled():
        pytest.skip("the catalog cache needs Redis: REDIS_URL is empty")


def raw_connection(**options):
    """A psycopg session of its own, as the app's role, on the test database."""
    params = connections["default"].get_connection_params()
    for name in payments.DJANGO_ONLY_PARAMS:
        params.pop(name, None)
    return psycopg.connect(**params, **options)


@pytest.fixture
def heard():
    """A session LISTENing on the channel; call it to get what arrived since."""
    with raw_connection(autocommit=True) as session:
        session.execute(f"LISTEN {CHANNEL}")

        def arrived():
            return [json.loads(n.payload) for n in session.notifies(timeout=0.3)]

        yield arrived


def write(sql, params=()):
    """One statement in a transaction of its own, committed and on the replica.

    Nobody marks the catalog as written for it but the listener, where one
    runs; a read routed to a replica that had not replayed it yet would fill
    the cache with rows from before it.
    """
    with raw_connection() as session:
        session.execute(sql, params)
        session.commit()
    wait_for_replica()


@pytest.fixture
def level():
    return StockLevelFactory(quantity_on_hand=5, variant__price=Decimal("19.99"))


def product_message(level, *, lists):
    return {
        "products": [level.variant.product_id],
        "lists": lists,
        "categories": False,
    }


def test_the_triggers_say_which_products_changed_and_whether_lists_did(heard, level):
    heard()  # the factory's inserts
    stock = "UPDATE catalog_stock_level SET {} WHERE id = %s"

    write(stock.format("reserved = reserved + 1"), [level.pk])  # a reservation
    assert heard() == [product_message(level, lists=False)]

    # A sale takes the unit off both counts: nothing shown changes.
    write(
        stock.format("quantity_on_hand = quantity_on_hand - 1, reserved = 0"),
        [level.pk],
    )
    assert heard() == []

    write(stock.format("reserved = quantity_on_hand"), [level.pk])  # the last unit
    assert heard() == [product_message(level, lists=True)]

    # A new price moves min_price, which orders the lists.
    write(
        "UPDATE catalog_product_variant SET price = 5 WHERE id = %s",
        [level.variant_id],
    )
    assert product_message(level, lists=True) in heard()

    with raw_connection() as session:
        session.execute(stock.format("reserved = 0"), [level.pk])
        session.rollback()
    assert heard() == []


def test_a_change_of_many_products_says_everything(heard):
    """Past 300 products the payload would near NOTIFY's 8000-byte limit.

    Called directly rather than by a statement over 301 products: committed
    rows that many would change the planner's statistics under the tests
    that read plans on small tables (tests/catalog/test_indexes.py).
    """
    notify = (
        "SELECT catalog_cache_notify("
        "ARRAY(SELECT generate_series(1, %s)), false, false)"
    )
    write(notify, [300])
    (at_the_limit,) = heard()
    write(notify, [301])

    assert len(at_the_limit["products"]) == 300
    assert heard() == [{"everything": True}]


@pytest.fixture
def listener():
    """The listener, in a thread, as `manage.py cache_listen` runs it."""
    running = start_in_thread()
    assert running.ready.wait(10), "the listener did not start"
    yield running
    running.stop.set()


def eventually(read, expected, timeout=5.0):
    """read() once it returns `expected`, or the last value after `timeout`."""
    deadline = time.monotonic() + timeout
    while True:
        value = read()
        if value == expected or time.monotonic() > deadline:
            return value
        time.sleep(0.02)


def available_on_the_page(client, level):
    slug = level.variant.product.slug
    return client.get(f"/api/v1/products/{slug}/").json()["available"]


def test_a_checkout_retires_the_products_page(listener, api_client, level):
    wait_for_replica()
    assert available_on_the_page(api_client, level) == 5
    item = CartItemFactory(variant=level.variant, quantity=2)
    shopper = client_for(item.cart.customer)

    response = checkout(shopper)

    assert response.status_code == 201, response.json()
    # Sold: on hand 3, none reserved. The page follows within the listener's
    # round trip.
    assert eventually(lambda: available_on_the_page(api_client, level), 3) == 3


def test_the_release_procedure_retires_the_products_page(listener, api_client):
    level, order = interrupted_checkout(units=2)  # reserves 2 of 5
    # Recovery asked the gateway: never charged, so the procedure may release it.
    with job_transaction("test"):
        payment_record(
            order_id=order.pk,
            amount=order.total,
            outcome=ChargeOutcome(Payment.Status.NOT_CAPTURED),
        )
    age(order, timedelta(hours=1))
    wait_for_replica()
    assert eventually(lambda: available_on_the_page(api_client, level), 3) == 3

    with raw_connection(autocommit=True) as session:
        session.execute(
            "CALL orders_release_stale_reservations(%s, 100, 0)",
            [timedelta(minutes=15)],
        )

    with as_staff():
        assert Order.objects.get(pk=order.pk).status == "failed"
    assert eventually(lambda: available_on_the_page(api_client, level), 5) == 5


def test_a_cancel_retires_the_products_page(listener, api_client, level):
    wait_for_replica()
    item = CartItemFactory(variant=level.variant, quantity=1)
    shopper = client_for(item.cart.customer)
    order_id = checkout(shopper).json()["id"]
    assert eventually(lambda: available_on_the_page(api_client, level), 4) == 4

    assert shopper.post(f"/api/v1/orders/{order_id}/cancel/").status_code == 200

    assert eventually(lambda: available_on_the_page(api_client, level), 5) == 5


def test_psql_writes_reach_the_lists_too(listener, api_client, level):
    wait_for_replica()
    url = "/api/v1/products/?in_stock=true"
    assert [p["id"] for p in api_client.get(url).json()["results"]] == [
        level.variant.product_id
    ]

    write("UPDATE catalog_stock_level SET reserved = quantity_on_hand")

    def listed():
        return [p["id"] for p in api_client.get(url).json()["results"]]

    assert eventually(listed, []) == []


def test_a_listener_that_was_away_retires_everything(api_client, level):
    """Notifications sent while nobody listened are lost; a (re)start makes up."""
    wait_for_replica()
    assert available_on_the_page(api_client, level) == 5
    write("UPDATE catalog_stock_level SET reserved = 1 WHERE id = %s", [level.pk])
    assert available_on_the_page(api_client, level) == 5  # nobody listened

    running = start_in_thread()
    try:
        assert running.ready.wait(10)
        assert available_on_the_page(api_client, level) == 4
        applied = running.applied
        # Its session cut, as a restart of the primary or a network cut would.
        write(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
            "WHERE query LIKE %s AND pid <> pg_backend_pid()",
            [f"LISTEN {CHANNEL}%"],
        )
        assert eventually(lambda: running.applied > applied, True, timeout=10)
    finally:
        running.stop.set()


def test_a_staff_change_shows_at_once_without_a_listener(
    api_client, staff_client, level
):
    """Committed through the API: the versions move before the response leaves."""
    wait_for_replica()
    assert available_on_the_page(api_client, level) == 5

    staff_client.patch(
        f"/api/v1/stock/{level.variant.sku}/", {"quantity_on_hand": 9}, format="json"
    )

    assert available_on_the_page(api_client, level) == 9


def test_checkout_never_trusts_the_cached_availability(api_client, level):
    """Pages made stale on purpose: no listener runs while SQL changes the stock.

    The page says 5 while the row says 0: checkout refuses. The page says 0
    while the row says 5: checkout sells. It counts on the rows it locks.
    """
    wait_for_replica()
    assert available_on_the_page(api_client, level) == 5
    write(
        "UPDATE catalog_stock_level SET quantity_on_hand = 0 WHERE id = %s", [level.pk]
    )
    assert available_on_the_page(api_client, level) == 5  # stale, as intended
    item = CartItemFactory(variant=level.variant, quantity=1)
    shopper = client_for(item.cart.customer)

    refused = checkout(shopper, key=str(uuid.uuid4()))

    assert (refused.status_code, refused.json()["code"]) == (409, "insufficient_stock")

    other = StockLevelFactory(quantity_on_hand=0)
    assert available_on_the_page(api_client, other) == 0
    write(
        "UPDATE catalog_stock_level SET quantity_on_hand = 5 WHERE id = %s", [other.pk]
    )
    assert available_on_the_page(api_client, other) == 0  # stale
    CartItemFactory(cart=item.cart, variant=other.variant, quantity=1)
    with as_staff():
        item.delete()

    sold = checkout(shopper, key=str(uuid.uuid4()))

    assert sold.status_code == 201, sold.json()
    assert StockLevel.objects.get(pk=other.pk).quantity_on_hand == 4


def test_the_listen_session_skips_pgbouncer(settings):
    settings.DATABASE_VIA_PGBOUNCER = True
    settings.DATABASE_URL = "postgres://shop_app:x@127.0.0.9:5999/shop"
    params = listen_params()
    assert (params["host"], str(params["port"])) == ("127.0.0.9", "5999")
    # Still the test database and the app's role.
    assert params["dbname"] == connections["default"].settings_dict["NAME"]
    assert params["user"] == connections["default"].settings_dict["USER"]
