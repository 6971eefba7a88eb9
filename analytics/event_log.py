"""Reads of the MongoDB event log: the staff event list and the funnel (chapter 19).

The list pages by keyset, newest first: a cursor carries the last event's
(occurred_at, _id), and the next page is the events strictly after it in
that order. event_store's indexes lead with the filter ((type | customer_id),
occurred_at desc, _id desc), so a page starts where the cursor points
instead of skipping the pages before it.

The funnel asks: of the (customer, product) pairs where a signed-in customer
viewed a product in the window, how many had that product added to their
cart after the first view, and how many then ordered it? It is answered
twice, on purpose:

    funnel_mongo   an aggregation pipeline over the event log (the views'
                   collection, joined to the customer's business events)
    funnel_sql     the same question in SQL over the outbox in PostgreSQL,
                   where the same events wait before the relay ships them

The two must agree on the same events (tests/analytics/test_event_log.py),
and chapter 19 sets them side by side. Anonymous views count nowhere: a
view without a customer cannot be followed to a cart.
"""

import binascii
import json
from base64 import urlsafe_b64decode, urlsafe_b64encode
from dataclasses import dataclass
from datetime import UTC, datetime

from django.conf import settings
from django.db import connection
from pymongo.errors import PyMongoError

from analytics import event_store
from analytics.reports import Window
from shop.db_context import job_transaction
from shop.errors import NotFound, ServiceUnavailable
from shop.sql_files import read_sql

FUNNEL_STEPS = ("viewed", "carted", "ordered")
# The years a cursor's time may name (the reports' window bounds too).
CURSOR_YEARS = (1970, 9000)
FUNNEL_JOB = "funnel_report"


def _unavailable(exc: Exception) -> ServiceUnavailable:
    reason = (
        str(exc)
        if isinstance(exc, event_store.EventStoreUnavailable)
        else f"MongoDB did not answer: {event_store.short_error(exc)}"
    )
    return ServiceUnavailable(reason, code="event_store_unavailable")


# --- The event list ------------------------------------------------------------


@dataclass(frozen=True)
class EventPage:
    events: list[dict]
    next_cursor: str | None


def encode_cursor(occurred_at: datetime, event_id: str) -> str:
    raw = json.dumps([occurred_at.isoformat(), event_id]).encode()
    return urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[datetime, str]:
    """The (occurred_at, _id) a cursor carries; NotFound if it is not one of ours."""
    try:
        raw = urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        at, event_id = json.loads(raw)
        when = datetime.fromisoformat(at)
        if not isinstance(event_id, str) or len(event_id) != 36 or not when.tzinfo:
            raise ValueError(event_id)
        # In UTC and within years BSON's dates and the shop's events can
        # hold: 0001-01-01 at +05:00 is a valid ISO time that pymongo cannot
        # convert (OverflowError), and a cursor must never be a 500.
        when = when.astimezone(UTC)
        if not CURSOR_YEARS[0] <= when.year <= CURSOR_YEARS[1]:
            raise ValueError(at)
    except (binascii.Error, ValueError, TypeError, UnicodeDecodeError, OverflowError):
        raise NotFound("Invalid cursor.", code="invalid_cursor") from None
    return when, event_id


def event_filter(
    *,
    type: str | None = None,
    customer_id: int | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    after: tuple[datetime, str] | None = None,
) -> dict:
    """The MongoDB query of one page: the filters, and the keyset condition."""
    query: dict = {}
    if type is not None:
        query["type"] = type
    if customer_id is not None:
        query["customer_id"] = customer_id
    window = {}
    if since is not None:
        window["$gte"] = since
    if until is not None:
        window["$lt"] = until
    if window:
        query["occurred_at"] = window
    if after is not None:
        at, event_id = after
        # Newest first: "after" the cursor is older, or as old with a
        # smaller _id. Both branches can use the (..., occurred_at, _id) index.
        keyset = {
            "$or": [
                {"occurred_at": {"$lt": at}},
                {"occurred_at": at, "_id": {"$lt": event_id}},
            ]
        }
        query = {"$and": [query, keyset]} if query else keyset
    return query


def events_page(*, limit: int, cursor: str | None = None, **filters) -> EventPage:
    """One page of business events, newest first (the staff event-log API)."""
    after = decode_cursor(cursor) if cursor else None
    query = event_filter(after=after, **filters)
    try:
        found = list(
            event_store.database()[event_store.EVENTS]
            .find(query)
            .sort([("occurred_at", -1), ("_id", -1)])
            .limit(limit + 1)
            .max_time_ms(settings.MONGO_QUERY_TIMEOUT_MS)
        )
    except (event_store.EventStoreUnavailable, PyMongoError) as exc:
        raise _unavailable(exc) from exc
    page = found[:limit]
    last = page[-1] if len(found) > limit else None
    next_cursor = encode_cursor(last["occurred_at"], last["_id"]) if last else None
    return EventPage(events=page, next_cursor=next_cursor)


# --- The funnel ------------------------------------------------------------------


def _first(conditions: list, *, after=None) -> dict:
    """A $min accumulator over the joined event's time, where `conditions` hold.

    $min skips the nulls the other events give, so a pair with no such event
    ends with null.
    """
    if after is not None:
        conditions = [*conditions, {"$gte": ["$later.occurred_at", after]}]
    return {"$min": {"$cond": [{"$and": conditions}, "$later.occurred_at", None]}}


def _is_set(field: str) -> dict:
    return {"$ne": [{"$ifNull": [field, None]}, None]}


def funnel_pipeline(since: datetime, until: datetime) -> list[dict]:
    """The funnel as an aggregation pipeline over `product_views`.

    Written with the stages mongomock also runs ($lookup by a local and a
    foreign field, $unwind, $group), so that one pipeline is tested in
    process and on a server: the $lookup brings each pair every event of
    its customer (the `customer` index finds them), and the groups keep the
    first cart add after the view and the first order after that.
    """
    in_window = {"$lt": ["$later.occurred_at", until]}
    same_product = {"$eq": ["$later.payload.product_id", "$_id.product"]}
    ordered_it = {
        "$in": ["$_id.product", {"$ifNull": ["$later.payload.lines.product_id", []]}]
    }
    return [
        {
            "$match": {
                "occurred_at": {"$gte": since, "$lt": until},
                "customer_id": {"$ne": None},
            }
        },
        {
            "$group": {
                "_id": {"customer": "$customer_id", "product": "$product_id"},
                "viewed_at": {"$min": "$occurred_at"},
            }
        },
        {
            "$lookup": {
                "from": event_store.EVENTS,
                "localField": "_id.customer",
                "foreignField": "customer_id",
                "as": "later",
            }
        },
        {"$unwind": {"path": "$later", "preserveNullAndEmptyArrays": True}},
        {
            "$group": {
                "_id": "$_id",
                "carted_at": _first(
                    [
                        {"$eq": ["$later.type", "cart.item_added"]},
                        same_product,
                        in_window,
                    ],
                    after="$viewed_at",
                ),
                # The order's time is compared with carted_at only once that
                # is known, in the next group: keep every candidate here.
                "orders": {
                    "$push": {
                        "$cond": [
                            {
                                "$and": [
                                    {"$eq": ["$later.type", "order.placed"]},
                                    ordered_it,
                                    in_window,
                                ]
                            },
                            "$later.occurred_at",
                            None,
                        ]
                    }
                },
            }
        },
        {"$unwind": {"path": "$orders", "preserveNullAndEmptyArrays": True}},
        {
            "$group": {
                "_id": "$_id",
                "carted_at": {"$first": "$carted_at"},
                "ordered_at": {
                    "$min": {
                        "$cond": [
                            {
                                "$and": [
                                    _is_set("$carted_at"),
                                    _is_set("$orders"),
                                    {"$gte": ["$orders", "$carted_at"]},
                                ]
                            },
                            "$orders",
                            None,
                        ]
                    }
                },
            }
        },
        {
            "$group": {
                "_id": None,
                "viewed": {"$sum": 1},
                "carted": {"$sum": {"$cond": [_is_set("$carted_at"), 1, 0]}},
                "ordered": {"$sum": {"$cond": [_is_set("$ordered_at"), 1, 0]}},
            }
        },
    ]


def _funnel(counts: dict, window: Window, source: str) -> dict:
    steps = []
    viewed = counts.get("viewed") or 0
    for name in FUNNEL_STEPS:
        pairs = counts.get(name) or 0
        share = round(pairs / viewed, 4) if viewed else None
        steps.append({"step": name, "pairs": pairs, "of_viewed": share})
    return {
        "since": window.since,
        "until": window.until,
        "source": source,
        "steps": steps,
    }


def funnel_mongo(window: Window) -> dict:
    params = window.params()
    try:
        rows = list(
            event_store.database()[event_store.VIEWS].aggregate(
                funnel_pipeline(params["since"], params["until"]),
                # The server stops the pipeline, not only the client waiting
                # for it: a staff retry never piles up behind a long one.
                maxTimeMS=settings.MONGO_QUERY_TIMEOUT_MS,
            )
        )
    except (event_store.EventStoreUnavailable, PyMongoError) as exc:
        raise _unavailable(exc) from exc
    return _funnel(rows[0] if rows else {}, window, "mongodb")


def funnel_sql(window: Window) -> dict:
    """The same funnel in SQL, over the events the outbox still holds.

    A job context: only jobs may read the outbox (shop/sql/rls/outbox_v01.sql).
    The relay purges shipped events after OUTBOX_RETENTION_SECONDS (7 days),
    so this answers for recent windows only; the event log keeps business
    events for good and views for EVENT_VIEW_TTL_SECONDS (90 days).
    """
    params = window.params()
    with job_transaction(FUNNEL_JOB), connection.cursor() as cursor:
        cursor.execute(
            read_sql("analytics/sql/queries/funnel_outbox_v01.sql"),
            {"since": params["since"], "until": params["until"]},
        )
        columns = [column.name for column in cursor.description]
        counts = dict(zip(columns, cursor.fetchone(), strict=True))
    return _funnel(counts, window, "postgresql")
