"""The relay on a real Celery worker and the real Redis broker.

The worker is a thread of this process (tests/orders/test_tasks.py's
fixture), so it shares the process's mongomock store: what it ships can be
read back here. A commit that wrote events kicks it (shop/outbox.py).
"""

import time

import pytest

from analytics import event_store
from shop import outbox as outbox_module
from shop.celery import app
from shop.outbox import outbox_backlog
from tests.accounts.factories import CustomerFactory
from tests.analytics.test_relay import closed_port
from tests.catalog.factories import StockLevelFactory
from tests.dbs import ALL_DATABASES
from tests.orders.conftest import client_for
from tests.orders.test_tasks import wait_for, worker  # noqa: F401 (a fixture)
from tests.shop.test_redis_down import forget_broker_connections

pytestmark = pytest.mark.django_db(transaction=True, databases=ALL_DATABASES)


def test_a_commit_kicks_a_worker_that_ships_its_events(worker, settings):  # noqa: F811
    settings.MONGO_URL = event_store.MOCK_SCHEME
    settings.MONGO_DB = "test_relay_worker"
    event_store.forget_clients()
    db = event_store.database()
    event_store.ensure_collections(db)
    level = StockLevelFactory(quantity_on_hand=5)  # stock.changed, no kick
    shopper = client_for(CustomerFactory())

    response = shopper.post(
        "/api/v1/cart/items/", {"sku": level.variant.sku, "quantity": 1}, format="json"
    )

    assert response.status_code == 201
    # The kick shipped both: the cart's event and the one left before it.
    assert wait_for(lambda: outbox_backlog().pending == 0)
    types = sorted(doc["type"] for doc in db[event_store.EVENTS].find())
    assert types == ["cart.item_added", "stock.changed"]
    event_store.client().drop_database("test_relay_worker")
    event_store.forget_clients()


def test_with_the_broker_down_a_write_still_answers_and_its_events_wait(settings):
    """No worker can be asked: the cart change answers all the same, its event
    waits in the outbox, and only the first request pays the broker's refusal."""
    settings.MONGO_URL = event_store.MOCK_SCHEME
    level = StockLevelFactory(quantity_on_hand=5)
    shopper = client_for(CustomerFactory())
    before = outbox_backlog().pending
    app.conf.task_always_eager = False
    app.conf.broker_url = f"redis://127.0.0.1:{closed_port()}/0"
    forget_broker_connections()
    try:
        first = shopper.post(
            "/api/v1/cart/items/",
            {"sku": level.variant.sku, "quantity": 1},
            format="json",
        )
        started = time.monotonic()
        second = shopper.post(
            "/api/v1/cart/items/",
            {"sku": level.variant.sku, "quantity": 1},
            format="json",
        )
        second_took = time.monotonic() - started
    finally:
        app.conf.task_always_eager = True
        app.conf.broker_url = settings.CELERY_BROKER_URL
        forget_broker_connections()
        outbox_module._kick_paused_until[0] = 0.0

    assert (first.status_code, second.status_code) == (201, 201)
    assert second_took < 2  # paused: no second wait for the broker
    assert outbox_backlog().pending == before + 2  # waiting, not lost
