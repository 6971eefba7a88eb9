"""Lab `outbox` (21): events written with their change, and MongoDB down,
nothing lost, nothing doubled.

The relay ships only this lab's own events (relay_pending(only=...)), so a
run on a development database never marks someone else's pending event
shipped. The store it ships to is the MongoDB at MONGO_URL when one answers
there, and otherwise mongomock in this process, which the lab says: what
mongomock shows is the relay's logic, not MongoDB's behaviour.
"""

from __future__ import annotations

import socket

from django.db import connections, transaction
from django.test.utils import override_settings

from analytics import event_store
from analytics.labs._common import store_url
from analytics.relay import relay_pending
from orders.labs._common import _committed_rows, _stock_rows
from shop.lab import Narrator, lab, rolled_back

TAG = "21"
EVENTS_SQL = """
SELECT aggregate_type || ':' || aggregate_id AS aggregate, sequence, type,
       payload ->> 'reason' AS reason, shipped_at IS NOT NULL AS shipped
FROM shop_outbox_event
WHERE aggregate_type = 'stock_level' AND aggregate_id = ANY (%s)
ORDER BY id
"""
AS_JOB_SQL = "SELECT set_config('app.job', 'lab_outbox', true)"
FORGET_SQL = """
WITH gone AS (
    DELETE FROM shop_outbox_event
    WHERE aggregate_type = 'stock_level' AND aggregate_id = ANY (%(ids)s)
)
DELETE FROM shop_outbox_sequence
WHERE aggregate_type = 'stock_level' AND aggregate_id = ANY (%(ids)s)
"""


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _events(n: Narrator, ids, label):
    """The lab's events, read as a job: the only context the outbox shows them to."""
    # A transaction (a savepoint inside the lab's own): the job's setting is
    # transaction-local, and would be gone by the next statement otherwise.
    with transaction.atomic(), connections["default"].cursor() as cursor:
        cursor.execute(AS_JOB_SQL)
        return n.sql(EVENTS_SQL, [ids], cursor=cursor, label=label)


@lab(
    "outbox",
    chapter="21",
    summary="Events commit with their change; MongoDB down, nothing lost or doubled",
)
def outbox(n: Narrator) -> None:
    n.step("The triggers that write the outbox, as the database holds them")
    triggers = n.sql(
        """
        SELECT event_object_table AS on_table, trigger_name,
               action_orientation AS for_each, action_timing AS timing
        FROM information_schema.triggers
        WHERE trigger_name LIKE 'orders_outbox_%'
        GROUP BY 1, 2, 3, 4
        ORDER BY 1, 2
        """
    )
    n.expect(
        {row[0] for row in triggers}
        == {
            "orders_order",
            "orders_payment",
            "orders_stock_movement",
            "orders_cart_item",
        },
        "orders, payments, the stock ledger and cart lines write their own events",
    )

    n.step("An event is written in the transaction of its change, or not at all")
    with rolled_back("default"):
        n.say("    BEGIN")
        n.act_as_staff()
        stock = _stock_rows(n, TAG, variants=2, on_hand=5, label="two stock rows")
        ids = [row[0] for row in stock]
        n.sql(
            "UPDATE catalog_stock_level SET quantity_on_hand = quantity_on_hand - 1 "
            "WHERE id = %s",
            [ids[0]],
        )
        inside = _events(n, ids, "the outbox, inside the transaction, as a job")
        n.expect(
            [(row[1], row[3]) for row in inside]
            == [(1, "initial"), (1, "initial"), (2, "unspecified")],
            "each change wrote its event, numbered per stock row: 1, 1, then 2",
        )
        n.say("    ROLLBACK")
    after = _events(n, ids, "the same, after the ROLLBACK")
    n.expect(after == [], "the rollback took the events with the change: none left")

    n.step("MongoDB down: the relay ships nothing, and loses nothing")
    with _committed_rows(n, TAG) as cursor:
        stock = _stock_rows(
            n, TAG, variants=2, on_hand=5, cursor=cursor, label="committed"
        )
        ids = [row[0] for row in stock]
        only = [f"stock_level:{i}" for i in ids]
        try:
            _mongo_down_and_back(n, ids, only)
        finally:
            with connections["owner"].cursor() as owner:
                owner.execute("SELECT set_config('app.job', 'lab_outbox', false)")
                owner.execute(FORGET_SQL, {"ids": ids})
                owner.execute("SELECT set_config('app.job', '', false)")
            n.say("    -- clean up: the lab's events and counters deleted")


def _mongo_down_and_back(n: Narrator, ids, only) -> None:
    down_url = f"mongodb://127.0.0.1:{_closed_port()}"
    with override_settings(MONGO_URL=down_url, MONGO_TIMEOUT_MS=300):
        event_store.forget_clients()
        n.say(f"    -- MONGO_URL={down_url}: nothing listens there")
        report = relay_pending(only=only)
    n.say(f"    relay: shipped {report.shipped}; stopped: {report.error}")
    pending = _events(n, ids, "the outbox after the failed relay")
    n.expect(
        report.shipped == 0 and len(pending) == 2 and not any(r[4] for r in pending),
        "MongoDB down: the relay shipped nothing, and both events wait, pending",
    )

    n.step("MongoDB back: the backlog drains, each event once")
    url = store_url(n)
    database = f"lab_outbox_{ids[0]}"
    with override_settings(MONGO_URL=url, MONGO_DB=database):
        event_store.forget_clients()
        try:
            db = event_store.database()
            event_store.ensure_collections(db)
            report = relay_pending(only=only)
            n.say(
                f"    relay: shipped {report.shipped}, "
                f"{report.new_documents} new documents"
            )
            shipped = _events(n, ids, "the outbox after the relay")
            n.expect(
                report.new_documents == 2 and all(r[4] for r in shipped),
                "both events are in the event log, and marked shipped",
            )

            n.step("A second delivery: the relay's COMMIT lost, the events sent again")
            with connections["owner"].cursor() as owner:
                owner.execute("SELECT set_config('app.job', 'lab_outbox', false)")
                owner.execute(
                    "UPDATE shop_outbox_event SET shipped_at = NULL "
                    "WHERE aggregate_type = 'stock_level' AND aggregate_id = ANY (%s)",
                    [ids],
                )
                owner.execute("SELECT set_config('app.job', '', false)")
            again = relay_pending(only=only)
            documents = db[event_store.EVENTS].count_documents(
                {"aggregate.type": "stock_level", "aggregate.id": {"$in": ids}}
            )
            n.say(
                f"    relay: shipped {again.shipped}, {again.new_documents} new "
                f"documents; the event log holds {documents}"
            )
            n.expect(
                again.shipped == 2 and again.new_documents == 0 and documents == 2,
                "sent twice, stored once: each upsert matched its event id",
            )
        finally:
            event_store.client().drop_database(database)
            event_store.forget_clients()
