"""The outbox relay (analytics/relay.py): lossless, never doubled, in order.

On the `store` fixture: mongomock always, a real MongoDB when MONGO_URL
answers (tests/analytics/conftest.py).
"""

import socket

import psycopg
import pytest
from django.db import connection, connections
from django.utils import timezone

from analytics import event_store
from analytics.relay import (
    LOCK_SPACE,
    RELAY_JOB,
    outbox_purge,
    relay_batch,
    relay_pending,
)
from shop.db_context import job_transaction
from shop.models import OutboxEvent
from shop.outbox import outbox_backlog
from shop.sql_files import read_sql
from tests.catalog.factories import StockLevelFactory
from tests.concurrency import run_concurrently
from tests.dbs import ALL_DATABASES

pytestmark = pytest.mark.django_db(transaction=True, databases=ALL_DATABASES)


def stock_events(levels: int, changes: int) -> list:
    """Stock rows changed `changes` times each: levels x (changes + 1) events."""
    rows = [StockLevelFactory(quantity_on_hand=5) for _ in range(levels)]
    ids = [row.pk for row in rows]
    with connection.cursor() as cursor:
        for _ in range(changes):
            cursor.execute(
                "UPDATE catalog_stock_level SET quantity_on_hand = quantity_on_hand + 1"
                " WHERE id = ANY(%s)",
                [ids],
            )
    return ids


def outbox() -> list[dict]:
    with job_transaction("test"):
        return list(OutboxEvent.objects.order_by("id").values())


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_the_relay_ships_every_pending_event_and_marks_it(store):
    stock_events(levels=2, changes=2)
    pending = outbox()
    assert len(pending) == 6

    report = relay_pending()

    assert (report.shipped, report.new_documents, report.error) == (6, 6, None)
    assert outbox_backlog().pending == 0
    assert all(row["shipped_at"] is not None for row in outbox())
    docs = {doc["_id"]: doc for doc in store[event_store.EVENTS].find()}
    assert set(docs) == {str(row["event_id"]) for row in pending}
    first = docs[str(pending[0]["event_id"])]
    assert first["type"] == "stock.changed"
    assert first["aggregate"] == {
        "type": "stock_level",
        "id": pending[0]["aggregate_id"],
    }
    assert first["sequence"] == 1
    assert first["payload"]["reason"] == "initial"
    # Nothing left: a second run ships nothing.
    assert relay_pending().shipped == 0


def test_a_second_delivery_makes_no_second_document(store):
    stock_events(levels=1, changes=3)
    relay_pending()
    # The COMMIT that marked them was lost (a crash after MongoDB answered):
    # as far as PostgreSQL knows, nothing was shipped.
    with connections["owner"].cursor() as cursor:
        cursor.execute("SELECT set_config('app.job', 'test', false)")
        cursor.execute("UPDATE shop_outbox_event SET shipped_at = NULL")
        cursor.execute("SELECT set_config('app.job', '', false)")

    report = relay_pending()

    assert (report.shipped, report.new_documents) == (4, 0)
    assert store[event_store.EVENTS].count_documents({}) == 4


def test_with_mongodb_down_nothing_is_lost_and_the_backlog_drains(store, settings):
    stock_events(levels=2, changes=1)
    working_url = settings.MONGO_URL
    settings.MONGO_URL = f"mongodb://127.0.0.1:{closed_port()}"
    settings.MONGO_TIMEOUT_MS = 300

    down = relay_pending()

    assert down.shipped == 0
    assert "MongoDB" in down.error
    assert outbox_backlog().pending == 4
    # Back: the same events drain, each once.
    settings.MONGO_URL = working_url
    event_store.forget_clients()
    back = relay_pending()
    assert (back.shipped, back.new_documents, back.error) == (4, 4, None)
    assert event_store.database()[event_store.EVENTS].count_documents({}) == 4
    assert outbox_backlog().pending == 0


def test_an_aggregate_another_relay_holds_is_left_to_it(store):
    held, other = stock_events(levels=2, changes=1)
    # Relay A takes the held row's first event only, and has not committed.
    params = connections["default"].get_connection_params()
    params.pop("cursor_factory", None)
    relay_a = psycopg.connect(**params)
    try:
        relay_a.execute("SELECT set_config('app.job', %s, true)", [RELAY_JOB])
        taken = relay_a.execute(
            read_sql("analytics/sql/queries/outbox_claim_v01.sql"),
            {"lock_space": LOCK_SPACE, "limit": 1, "only": None},
        ).fetchall()
        assert [(row[4], row[5]) for row in taken] == [(held, 1)]

        # Relay B ships the other row's events, and not the held row's second
        # event, which would land before its first.
        report = relay_batch(limit=10)
        shipped = [row for row in outbox() if row["shipped_at"] is not None]
        assert report.shipped == 2
        assert {row["aggregate_id"] for row in shipped} == {other}
    finally:
        relay_a.rollback()  # A dies before shipping: its event is pending again
        relay_a.close()
    report = relay_batch(limit=10)
    assert report.shipped == 2
    docs = store[event_store.EVENTS].find({"aggregate.id": held}).sort("sequence")
    assert [doc["sequence"] for doc in docs] == [1, 2]


def test_relays_at_once_ship_each_event_exactly_once_and_in_order(store):
    stock_events(levels=6, changes=14)  # 90 events, 15 per aggregate
    everything = [row["id"] for row in outbox()]

    def relay():
        positions = []
        while True:
            report = relay_batch(limit=7)
            if report.error:
                raise AssertionError(report.error)
            if not report.shipped:
                return positions
            positions += report.positions

    results, errors = run_concurrently([relay, relay, relay], timeout=120)

    assert errors == [None, None, None]
    positions = [p for result in results for p in result]
    assert sorted(positions) == everything  # all of them, none twice
    assert store[event_store.EVENTS].count_documents({}) == len(everything)
    for aggregate in {row["aggregate_id"] for row in outbox()}:
        docs = store[event_store.EVENTS].find({"aggregate.id": aggregate})
        assert sorted(doc["sequence"] for doc in docs) == list(range(1, 16))


def test_the_purge_deletes_only_events_shipped_before_the_retention(store):
    stock_events(levels=1, changes=2)
    relay_pending()
    stock_events(levels=1, changes=0)  # one more, pending
    with connections["owner"].cursor() as cursor:
        cursor.execute("SELECT set_config('app.job', 'test', false)")
        cursor.execute(
            "UPDATE shop_outbox_event SET shipped_at = now() - interval '8 days'"
            " WHERE shipped_at IS NOT NULL AND sequence < 3"
        )
        cursor.execute("SELECT set_config('app.job', '', false)")

    deleted = outbox_purge()

    assert deleted == 2
    left = outbox()
    assert [(row["sequence"], row["shipped_at"] is None) for row in left] == [
        (3, False),
        (1, True),
    ]
    assert all(
        row["shipped_at"] is None or row["shipped_at"] <= timezone.now() for row in left
    )


def test_setting_up_the_store_twice_changes_nothing(store):
    again = event_store.ensure_collections(store)
    assert any("index aggregate_sequence" in line for line in again)
    names = {index["name"] for index in store[event_store.VIEWS].list_indexes()}
    assert {"expire", "product", "customer"} <= names


@pytest.mark.mongo
def test_the_server_refuses_a_document_of_the_wrong_shape(store):
    if event_store._is_mock(store):
        pytest.skip("mongomock keeps no validator: a real MongoDB only")
    with pytest.raises(Exception) as caught:
        store[event_store.EVENTS].insert_one({"_id": "x", "type": "nonsense"})
    assert "validation" in str(caught.value).lower()


def test_an_event_mongodb_refuses_is_set_aside_and_the_rest_ship(store):
    first, second = stock_events(levels=2, changes=1)
    refused = outbox()[0]
    # Another document already holds the first event's place in its
    # aggregate's history (as after a restore of PostgreSQL to an earlier
    # point, which hands out the same numbers again).
    store[event_store.EVENTS].insert_one(
        {
            "_id": "00000000-0000-0000-0000-000000000000",
            "type": "stock.changed",
            "aggregate": {"type": "stock_level", "id": refused["aggregate_id"]},
            "sequence": refused["sequence"],
            "occurred_at": timezone.now(),
            "payload": {},
        }
    )

    report = relay_pending()

    assert (report.shipped, report.refused, report.error) == (3, 1, None)
    rows = {row["id"]: row for row in outbox()}
    assert rows[refused["id"]]["refused_at"] is not None
    assert rows[refused["id"]]["shipped_at"] is None
    assert "duplicate" in rows[refused["id"]]["refusal"].lower()
    backlog = outbox_backlog()
    assert (backlog.pending, backlog.refused) == (0, 1)
    assert {first, second} >= {row["aggregate_id"] for row in rows.values()}
