"""Product views: one Redis round trip on the cached read path, flushed into
the outbox in batches, shipped to the event log's expiring collection."""

import json
import uuid

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from analytics import event_store
from analytics.product_views import product_views_flush
from analytics.relay import relay_pending
from catalog.cache import store
from catalog.views_buffer import buffer_key
from shop.db_context import job_transaction
from shop.models import OutboxEvent
from tests.accounts.factories import CustomerFactory
from tests.catalog.factories import StockLevelFactory
from tests.concurrency import run_concurrently
from tests.dbs import ALL_DATABASES
from tests.orders.conftest import client_for

pytestmark = pytest.mark.django_db(transaction=True, databases=ALL_DATABASES)


def buffer():
    """The buffer's Redis list, through the catalog cache's access."""
    with store.redis() as redis:
        return redis


@pytest.fixture(autouse=True)
def empty_buffer():
    buffer().delete(buffer_key())
    yield
    buffer().delete(buffer_key())


def views():
    with job_transaction("test"):
        return list(
            OutboxEvent.objects.filter(type="product.viewed")
            .order_by("id")
            .values("aggregate_id", "sequence", "customer_id", "payload", "event_id")
        )


def test_a_view_is_one_redis_push_and_no_database_write(client):
    product = StockLevelFactory(quantity_on_hand=5).variant.product
    client.get(f"/api/v1/products/{product.slug}/")  # warms the cache

    with CaptureQueriesContext(connection) as queries:
        response = client.get(f"/api/v1/products/{product.slug}/")

    assert response.status_code == 200
    assert len(queries) == 0  # warm, and the view went to Redis only
    entries = [json.loads(e) for e in buffer().lrange(buffer_key(), 0, -1)]
    assert [(e["product_id"], e["user_id"]) for e in entries] == [
        (product.pk, None),
        (product.pk, None),
    ]
    assert views() == []


def test_the_flush_moves_views_into_the_outbox_with_their_customer():
    customer = CustomerFactory()
    product = StockLevelFactory(quantity_on_hand=5).variant.product
    client_for(customer).get(f"/api/v1/products/{product.slug}/")
    client_for(customer).get(f"/api/v1/products/{product.slug}/")

    moved = product_views_flush()

    assert moved == 2
    rows = views()
    assert [(r["aggregate_id"], r["sequence"], r["customer_id"]) for r in rows] == [
        (product.pk, 1, customer.pk),
        (product.pk, 2, customer.pk),
    ]
    assert rows[0]["payload"] == {"product_id": product.pk}
    assert buffer().llen(buffer_key()) == 0


def test_views_handed_over_twice_count_once(client):
    product = StockLevelFactory(quantity_on_hand=5).variant.product
    client.get(f"/api/v1/products/{product.slug}/")
    entries = buffer().lrange(buffer_key(), 0, -1)
    product_views_flush()
    # The flush died after its COMMIT, before trimming: the same entries again.
    buffer().rpush(buffer_key(), *entries)

    assert product_views_flush() == 1

    assert len(views()) == 1
    assert buffer().llen(buffer_key()) == 0


def test_the_relay_ships_views_to_the_expiring_collection(store, client):
    product = StockLevelFactory(quantity_on_hand=5).variant.product
    client.get(f"/api/v1/products/{product.slug}/")
    product_views_flush()

    relay_pending()

    docs = list(store[event_store.VIEWS].find())
    assert [(d["product_id"], d["customer_id"]) for d in docs] == [(product.pk, None)]
    assert str(views()[0]["event_id"]) == docs[0]["_id"]
    assert store[event_store.EVENTS].count_documents({"type": "product.viewed"}) == 0


def test_an_entry_that_is_not_a_view_is_dropped_and_the_rest_flushed(client):
    product = StockLevelFactory(quantity_on_hand=5).variant.product
    buffer().rpush(buffer_key(), b"not json", json.dumps({"id": "x"}))
    buffer().rpush(
        buffer_key(),
        json.dumps({"id": str(uuid.uuid4()), "product_id": 2**70, "at": "2026-01-01"}),
    )
    client.get(f"/api/v1/products/{product.slug}/")

    assert product_views_flush() == 4  # taken off the buffer, all four

    assert [r["aggregate_id"] for r in views()] == [product.pk]
    assert buffer().llen(buffer_key()) == 0


def test_two_flushes_at_once_lose_and_double_nothing(client):
    product = StockLevelFactory(quantity_on_hand=5).variant.product
    for _ in range(30):
        client.get(f"/api/v1/products/{product.slug}/")

    results, errors = run_concurrently(
        [lambda: product_views_flush(limit=4), lambda: product_views_flush(limit=4)]
    )

    assert errors == [None, None]
    assert sum(results) == 30  # whichever flush got the lock took them all
    assert len(views()) == 30
    assert buffer().llen(buffer_key()) == 0
