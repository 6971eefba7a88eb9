"""The outbox relay: pending events from PostgreSQL to the MongoDB event log.

One batch is one transaction, acting as the job `outbox_relay` (the only
kind of context the outbox lets read it, shop/sql/rls/outbox_v01.sql):

    1. take the oldest pending events, locked (outbox_claim_v01.sql says how
       two relays share the work without shipping an aggregate out of order)
    2. write them to MongoDB, each by its event id, and wait for the
       acknowledgement (analytics/event_store.py: ship)
    3. mark them shipped, and COMMIT

Nothing is lost: an event is marked shipped only after MongoDB acknowledged
it, in the transaction that held it, so a failure anywhere before the COMMIT
(MongoDB down, the worker killed, PostgreSQL gone) leaves it pending for
the next run. Nothing is doubled: an event that reached MongoDB and was not
marked (the COMMIT lost) is written again by its _id, which matches the
document already there and changes nothing. At least once into the store,
exactly once in it.

The transaction stays open while MongoDB answers, holding the batch's row
locks; MONGO_TIMEOUT_MS and MONGO_SOCKET_TIMEOUT_MS bound that. Nothing else
waits for those locks: writers append new rows, and other relays skip them.
"""

import json
import logging
from dataclasses import dataclass, field
from datetime import timedelta

from django.conf import settings
from django.db import connection
from django.utils import timezone

from analytics import event_store
from shop.db_context import job_transaction
from shop.sql_files import read_sql

log = logging.getLogger(__name__)

RELAY_JOB = "outbox_relay"
PURGE_JOB = "outbox_purge"
# The first key of the relay's advisory locks (outbox_claim_v01.sql): a
# fixed number, so that no other advisory lock of the shop can collide.
LOCK_SPACE = 21_0001
COLUMNS = (
    "id",
    "event_id",
    "type",
    "aggregate_type",
    "aggregate_id",
    "sequence",
    "customer_id",
    "occurred_at",
    "payload",
)


@dataclass
class RelayReport:
    """What one run of the relay did."""

    shipped: int = 0  # events marked shipped
    refused: int = 0  # events MongoDB refused for good, set aside
    new_documents: int = 0  # of those, the ones MongoDB did not hold yet
    batches: int = 0
    error: str | None = None  # why it stopped early; the events stay pending
    positions: list[int] = field(default_factory=list, repr=False)


def relay_batch(*, limit: int | None = None, only=None) -> RelayReport:
    """Ship one batch; the report says how many, or why none.

    `only`: ship these aggregates' events alone ("stock_level:42"), for the
    lab; None, every aggregate's.
    """
    limit = limit or settings.OUTBOX_RELAY_BATCH
    report = RelayReport()
    try:
        db = event_store.database()
        with job_transaction(RELAY_JOB):
            events = _claim(limit, only)
            if not events:
                return report
            report.new_documents = event_store.ship(events, db)
            _mark_shipped([event["id"] for event in events])
    except event_store.EventRefused as exc:
        # The batch rolled back, this event included. Set it aside in a
        # transaction of its own, so that the next batch ships the rest
        # (the ones MongoDB already took match their _id, and stay as they
        # are) instead of failing on it forever.
        _mark_refused(exc)
        report.refused = 1
        return report
    except event_store.EventStoreUnavailable as exc:
        # The transaction rolled back: the batch is pending, unlocked, and
        # the next run (beat, a kick) tries it again.
        report.error = str(exc)
        return report
    report.shipped, report.batches = len(events), 1
    report.positions = [event["id"] for event in events]
    return report


def relay_pending(
    *, max_batches: int | None = None, limit: int | None = None, only=None
):
    """Ship batches until the backlog is empty, a batch fails, or max_batches."""
    max_batches = max_batches or settings.OUTBOX_RELAY_MAX_BATCHES
    limit = limit or settings.OUTBOX_RELAY_BATCH
    total = RelayReport()
    for _ in range(max_batches):
        report = relay_batch(limit=limit, only=only)
        total.shipped += report.shipped
        total.refused += report.refused
        total.new_documents += report.new_documents
        total.batches += report.batches
        total.positions += report.positions
        if report.error:
            total.error = report.error
            log.warning("outbox relay stopped; events stay pending: %s", report.error)
            break
        if report.shipped < limit and not report.refused:
            break
    return total


def _claim(limit: int, only=None) -> list[dict]:
    with connection.cursor() as cursor:
        cursor.execute(
            read_sql("analytics/sql/queries/outbox_claim_v01.sql"),
            {"lock_space": LOCK_SPACE, "limit": limit, "only": only},
        )
        events = [dict(zip(COLUMNS, row, strict=True)) for row in cursor.fetchall()]
    for event in events:
        # Django's connection hands jsonb over as text (JSONField decodes it);
        # the event log stores the object itself.
        if isinstance(event["payload"], str):
            event["payload"] = json.loads(event["payload"])
    return events


def _mark_shipped(ids: list[int]) -> None:
    with connection.cursor() as cursor:
        cursor.execute(
            read_sql("analytics/sql/queries/outbox_mark_shipped_v01.sql"),
            {"ids": ids},
        )


def _mark_refused(refused: event_store.EventRefused) -> None:
    log.error(
        "outbox relay: %s. The event is set aside (shop_outbox_event.refused_at) "
        "and the events after it ship; look at it, fix the cause, and clear "
        "refused_at to ship it again.",
        refused,
    )
    with job_transaction(RELAY_JOB), connection.cursor() as cursor:
        cursor.execute(
            read_sql("analytics/sql/queries/outbox_mark_refused_v01.sql"),
            {"event_id": refused.event_id, "refusal": refused.reason[:2000]},
        )


def outbox_purge(*, older_than: timedelta | None = None) -> int:
    """Delete events shipped longer ago than the retention; return how many.

    The event log keeps them; the outbox only needs them until shipped, and
    a while after, for whoever debugs a relay. In bounded batches, each its
    own short transaction, so a large purge never holds many locks long.
    """
    if older_than is None:
        older_than = timedelta(seconds=settings.OUTBOX_RETENTION_SECONDS)
    cutoff = timezone.now() - older_than
    deleted = 0
    while True:
        with job_transaction(PURGE_JOB), connection.cursor() as cursor:
            cursor.execute(
                read_sql("analytics/sql/queries/outbox_purge_v01.sql"),
                {"cutoff": cutoff, "limit": settings.OUTBOX_PURGE_BATCH},
            )
            batch = cursor.rowcount
        deleted += batch
        if batch < settings.OUTBOX_PURGE_BATCH:
            return deleted
