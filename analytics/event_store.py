"""The MongoDB event log: where the outbox's events end up (chapters 19, 21).

Two collections, made by `manage.py event_store_setup` (ensure_collections):

    events         every business event, one document per outbox row, its
                   _id the event's id; kept
    product_views  the raw product views, which expire after
                   EVENT_VIEW_TTL_SECONDS (a TTL index): the funnel and the
                   reports need recent views, not every view since the start

Both have a JSON-schema validator, so a document the relay or a bug writes
in the wrong shape is refused by the server, not stored. A write is
acknowledged (w=1 at least, MONGO_WRITE_CONCERN) before the relay marks its
events shipped.

MONGO_URL `mongomock://` stands for an in-process mongomock store: the unit
tests and the "Mongo down" lab run on it where no MongoDB server runs. Its
results are mongomock's, not MongoDB's: it ignores validators, for one.
tests/analytics/test_relay.py runs the same tests on a real server,
marked `mongo`, whenever MONGO_URL answers.
"""

import threading
from collections.abc import Iterable

import pymongo
from django.conf import settings
from pymongo import UpdateOne
from pymongo.errors import BulkWriteError, PyMongoError, WriteError

from shop.models import EVENT_TYPES

MOCK_SCHEME = "mongomock://"
EVENTS = "events"
VIEWS = "product_views"
# The one event kind that goes to its own, expiring collection.
VIEW_TYPE = "product.viewed"
BUSINESS_TYPES = [t for t in EVENT_TYPES if t != VIEW_TYPE]


class EventStoreUnavailable(Exception):
    """No event store is configured, or the one configured does not answer."""


class EventRefused(Exception):
    """MongoDB refused one event for good: retrying it would fail again."""

    def __init__(self, event_id: str, reason: str):
        super().__init__(f"MongoDB refused event {event_id}: {reason}")
        self.event_id, self.reason = event_id, reason


# A document the validator rejects (121), or another document already in
# this event's place in its aggregate (11000; a second write of the same
# event matches its _id instead, and is no error).
REFUSAL_CODES = {121, 11000}


_clients: dict[str, pymongo.MongoClient] = {}
_lock = threading.Lock()


def client() -> pymongo.MongoClient:
    """The process's client for MONGO_URL, made on first use.

    One per URL and process: a client runs its own monitor threads and
    pool. Made lazily, after a Celery or gunicorn worker has forked, since a
    client does not survive a fork.
    """
    url = settings.MONGO_URL
    if not url:
        raise EventStoreUnavailable(
            "MONGO_URL is empty: no event store is configured, so events stay "
            "in the outbox (set MONGO_URL, e.g. mongodb://127.0.0.1:27017, and "
            "start MongoDB: docker compose up mongo)"
        )
    with _lock:
        found = _clients.get(url)
        if found is None:
            found = _clients[url] = _new_client(url)
    return found


def _new_client(url: str):
    if url.startswith(MOCK_SCHEME):
        import mongomock  # a test dependency, imported only where asked for

        # tz_aware like the real client below: datetimes come back aware, and
        # compare with the aware datetimes the queries carry.
        return mongomock.MongoClient(tz_aware=True)
    timeout = settings.MONGO_TIMEOUT_MS
    concern = settings.MONGO_WRITE_CONCERN
    return pymongo.MongoClient(
        url,
        serverSelectionTimeoutMS=timeout,
        connectTimeoutMS=timeout,
        socketTimeoutMS=settings.MONGO_SOCKET_TIMEOUT_MS,
        # "1" is a number of members; any other word names a mode or tag.
        w=int(concern) if concern.isdigit() else concern,
        appname="shop-events",
        tz_aware=True,
    )


def database():
    return client()[settings.MONGO_DB]


def forget_clients() -> None:
    """Close and drop the process's clients (tests, after a URL change)."""
    with _lock:
        for found in _clients.values():
            found.close()
        _clients.clear()


# --- Collections ------------------------------------------------------------


def _events_schema() -> dict:
    number = ["int", "long"]
    return {
        "$jsonSchema": {
            "bsonType": "object",
            "required": [
                "_id",
                "type",
                "aggregate",
                "sequence",
                "occurred_at",
                "payload",
            ],
            "properties": {
                "_id": {"bsonType": "string", "minLength": 36, "maxLength": 36},
                "type": {"enum": BUSINESS_TYPES},
                "aggregate": {
                    "bsonType": "object",
                    "required": ["type", "id"],
                    "properties": {
                        "type": {"bsonType": "string"},
                        "id": {"bsonType": number},
                    },
                },
                "sequence": {"bsonType": number, "minimum": 1},
                "customer_id": {"bsonType": [*number, "null"]},
                "occurred_at": {"bsonType": "date"},
                "payload": {"bsonType": "object"},
            },
        }
    }


def _views_schema() -> dict:
    number = ["int", "long"]
    return {
        "$jsonSchema": {
            "bsonType": "object",
            "required": ["_id", "product_id", "occurred_at"],
            "properties": {
                "_id": {"bsonType": "string", "minLength": 36, "maxLength": 36},
                "product_id": {"bsonType": number},
                "customer_id": {"bsonType": [*number, "null"]},
                "occurred_at": {"bsonType": "date"},
            },
        }
    }


def _indexes() -> dict[str, list[tuple[list, dict]]]:
    asc, desc = pymongo.ASCENDING, pymongo.DESCENDING
    return {
        EVENTS: [
            # One document per (aggregate, sequence): a second relay of the
            # same event is caught by _id already; this catches two events
            # claiming one place in an aggregate's history (a database
            # restored to an earlier point and written again).
            (
                [("aggregate.type", asc), ("aggregate.id", asc), ("sequence", asc)],
                {"name": "aggregate_sequence", "unique": True},
            ),
            # The event-log API's filters, newest first, _id breaking ties.
            ([("type", asc), ("occurred_at", desc), ("_id", desc)], {"name": "type"}),
            (
                [("customer_id", asc), ("occurred_at", desc), ("_id", desc)],
                {"name": "customer"},
            ),
            ([("occurred_at", desc), ("_id", desc)], {"name": "time"}),
        ],
        VIEWS: [
            (
                [("occurred_at", asc)],
                {
                    "name": "expire",
                    "expireAfterSeconds": settings.EVENT_VIEW_TTL_SECONDS,
                },
            ),
            ([("product_id", asc), ("occurred_at", desc)], {"name": "product"}),
            (
                [("customer_id", asc), ("occurred_at", desc)],
                {"name": "customer"},
            ),
        ],
    }


def ensure_collections(db=None) -> list[str]:
    """Create the collections, validators and indexes; idempotent.

    A collection that exists gets its validator replaced (collMod), so a
    changed schema reaches an existing store; create_index is a no-op for
    an index that exists with the same options. Returns what it did.
    """
    db = database() if db is None else db
    schemas = {EVENTS: _events_schema(), VIEWS: _views_schema()}
    existing = set(db.list_collection_names())
    done = []
    for name, schema in schemas.items():
        if name in existing:
            if _is_mock(db):
                done.append(f"{name}: exists (mongomock keeps no validator)")
            else:
                db.command("collMod", name, validator=schema, validationLevel="strict")
                done.append(f"{name}: validator updated")
        elif _is_mock(db):
            db.create_collection(name)
            done.append(f"{name}: created (mongomock keeps no validator)")
        else:
            db.create_collection(name, validator=schema, validationLevel="strict")
            done.append(f"{name}: created")
    for name, indexes in _indexes().items():
        for keys, options in indexes:
            db[name].create_index(keys, **options)
            done.append(f"{name}: index {options['name']}")
    return done


def _is_mock(db) -> bool:
    return type(db).__module__.startswith("mongomock")


# --- Writes -----------------------------------------------------------------


def document(event: dict) -> tuple[str, dict]:
    """The collection and document of one outbox row (analytics/relay.py)."""
    event_id = str(event["event_id"])
    if event["type"] == VIEW_TYPE:
        payload = event["payload"]
        return VIEWS, {
            "_id": event_id,
            "product_id": event["aggregate_id"],
            "customer_id": event["customer_id"],
            "occurred_at": event["occurred_at"],
            **({"session": payload["session"]} if payload.get("session") else {}),
        }
    return EVENTS, {
        "_id": event_id,
        "type": event["type"],
        "aggregate": {"type": event["aggregate_type"], "id": event["aggregate_id"]},
        "sequence": event["sequence"],
        "customer_id": event["customer_id"],
        "occurred_at": event["occurred_at"],
        "payload": event["payload"],
    }


def ship(events: Iterable[dict], db=None) -> int:
    """Write the events, each by its _id; return how many were new.

    An upsert with $setOnInsert: an event shipped before (a relay that wrote
    here and then died before marking it shipped) matches its _id and is
    left as it is, so a second delivery is never a second document. Ordered
    writes, so that one aggregate's events land in sequence order, and the
    first failure stops the rest: the caller's transaction then rolls back,
    and every event of the batch stays pending. Raises EventRefused when
    MongoDB refused one event for good (REFUSAL_CODES), and
    EventStoreUnavailable for any other failure to write.
    """
    db = database() if db is None else db
    batches: dict[str, list] = {EVENTS: [], VIEWS: []}
    ids: dict[str, list[str]] = {EVENTS: [], VIEWS: []}
    for event in events:
        collection, doc = document(event)
        _id = doc.pop("_id")
        ids[collection].append(_id)
        batches[collection].append(
            UpdateOne({"_id": _id}, {"$setOnInsert": doc}, upsert=True)
        )
    new = 0
    try:
        for collection, writes in batches.items():
            if not writes:
                continue
            try:
                if _is_mock(db):
                    new += _ship_one_by_one(db[collection], writes)
                else:
                    result = db[collection].bulk_write(writes, ordered=True)
                    new += result.upserted_count
            except BulkWriteError as exc:
                first = exc.details["writeErrors"][0]
                _refuse_or_raise(ids[collection][first["index"]], first, exc)
            except WriteError as exc:  # mongomock's, one write at a time
                event_id = ids[collection][getattr(exc, "index", 0)]
                _refuse_or_raise(event_id, {"code": exc.code, "errmsg": str(exc)}, exc)
    except PyMongoError as exc:
        raise EventStoreUnavailable(
            f"MongoDB refused or did not answer: {short_error(exc)}"
        ) from exc
    return new


def short_error(exc: Exception) -> str:
    """pymongo's message without the topology it appends: one readable line."""
    text = str(exc).split(", Timeout:")[0].split(" (configured timeouts")[0]
    return text[:300]


def _refuse_or_raise(event_id: str, error: dict, exc: Exception):
    if error.get("code") in REFUSAL_CODES:
        raise EventRefused(event_id, error.get("errmsg", "")) from exc
    raise exc


def _ship_one_by_one(collection, writes) -> int:
    # mongomock 4.3 cannot take pymongo 4.20's UpdateOne in a bulk_write (it
    # passes an argument mongomock does not know): the same upserts, in the
    # same order, one call each. A failure says which, as bulk_write's does.
    new = 0
    for index, write in enumerate(writes):
        try:
            result = collection.update_one(write._filter, write._doc, upsert=True)
        except WriteError as exc:
            exc.index = index
            raise
        new += result.upserted_id is not None
    return new


def ping(db=None) -> None:
    """Raise EventStoreUnavailable unless the store answers."""
    db = database() if db is None else db
    try:
        db.command("ping")
    except PyMongoError as exc:
        reason = f"MongoDB does not answer: {short_error(exc)}"
        raise EventStoreUnavailable(reason) from exc
