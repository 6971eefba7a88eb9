"""Lab `redis` (19): the four jobs Redis does for the shop, key by key, and
where a buffered product view ends up in MongoDB.

Everything runs on the real Redis the settings name: the catalog cache's
entry and versions (catalog/cache/), the auth rate limit's counter
(shop/accounts/api/throttling.py), a Celery message in the broker's list
(shop/celery.py), and the product-view buffer (catalog/views_buffer.py)
flushed into the outbox (analytics/product_views.py) and relayed into the
event log (analytics/event_store.py).

What it leaves behind: nothing. Its catalogue rows are committed (a fill
and a flush read them on connections of their own) and deleted in
`finally`, with the view's outbox event and counter; its Redis keys are its
own (a TEST-NET client address, a queue no worker reads, a product that
exists only during the run) and are deleted too; the event store is a
database of its own, dropped at the end. The read-your-writes markers that
moving a version sets expire after READ_YOUR_WRITES_SECONDS by themselves.
"""

from __future__ import annotations

import base64
import json
import time
import warnings
from contextlib import contextmanager

import redis
from celery.exceptions import AlwaysEagerIgnored
from django.core.cache import cache
from django.db import connection, connections
from django.http import HttpRequest
from django.test.utils import CaptureQueriesContext, override_settings
from kombu.transport.redis import Channel as KombuRedisChannel

from analytics import event_store
from analytics.labs._common import store_url
from analytics.product_views import product_views_flush
from analytics.relay import relay_pending
from catalog import cache as catalog_cache
from catalog import selectors
from catalog.api.serializers import ProductDetailOutput
from catalog.cache import Change, store, versions_bump
from catalog.labs.cache import DELETE_ROWS
from catalog.labs.rows import catalog_names, catalog_rows
from catalog.views_buffer import buffer_key, record_view
from shop.accounts.api.throttling import TokenIpThrottle
from shop.celery import app as celery_app
from shop.db_context import job_transaction
from shop.lab import LabFailed, Narrator, connect, lab
from shop.outbox import RELAY_TASK

TAG = "redis"
# TEST-NET-3 (RFC 5737): documentation only, so no real client counts here.
LAB_CLIENT_IP = "203.0.113.19"
LAB_RATE = "3/min"
# No worker consumes it: workers read the queue named `celery`.
LAB_QUEUE = "lab-redis"
# kombu's routing tables for a queue it declared, as its Redis transport
# names them: the lab deletes them with its queue.
LAB_BINDINGS = [
    KombuRedisChannel.keyprefix_queue % LAB_QUEUE,
    KombuRedisChannel.keyprefix_binding_permanent % LAB_QUEUE,
]
VIEW_SQL = """
SELECT event_id, type, aggregate_type, aggregate_id, sequence, customer_id,
       payload, shipped_at
FROM shop_outbox_event
WHERE event_id = %s
"""
FORGET_SQL = """
WITH gone AS (
    DELETE FROM shop_outbox_event
    WHERE aggregate_type = 'product' AND aggregate_id = %(product_id)s
)
DELETE FROM shop_outbox_sequence
WHERE aggregate_type = 'product' AND aggregate_id = %(product_id)s
"""


def _where(client: redis.Redis) -> str:
    """host:port/db of a client, never its password."""
    kwargs = client.connection_pool.connection_kwargs
    return f"{kwargs.get('host')}:{kwargs.get('port')}/{kwargs.get('db', 0)}"


def _ttl(seconds: int) -> str:
    return {-1: "none", -2: "(no key)"}.get(seconds, f"{seconds} s")


def _short(value, width: int = 60) -> str:
    text = value.decode() if isinstance(value, bytes) else str(value)
    return text if len(text) <= width else text[: width - 3] + "..."


@lab(
    "redis",
    chapter="19",
    summary="Redis as cache, rate limiter, broker and view buffer, key by key",
)
def redis_roles(n: Narrator) -> None:
    if not catalog_cache.enabled():
        raise LabFailed(
            "Django's cache is not Redis (REDIS_URL is empty), so there is no "
            "Redis to show. Start it (scripts/services.sh up) and unset REDIS_URL."
        )
    client = cache.client.get_client(write=True)
    broker = redis.Redis.from_url(celery_app.conf.broker_url)
    _server(n, client, broker)
    names = catalog_names(TAG)
    with connect(autocommit=False) as writer:
        writer.execute(DELETE_ROWS, names)  # a killed run's rows, if any
        writer.commit()
        product_id = None
        try:
            n.step("A product of the lab's own, committed (the fill reads it)")
            (row,) = catalog_rows(n, TAG, on_hand=None, cursor=writer.cursor())
            writer.commit()
            n.say("    COMMIT")
            product_id = row.product_id
            _cache(n, client, names["slug"], product_id)
            _rate_limit(n, client)
            _broker(n, broker)
            event_id = _view_buffer(n, client, product_id)
            _event_log(n, product_id, event_id)
        finally:
            writer.rollback()
            gone = [r[0] for r in writer.execute(DELETE_ROWS, names).fetchall()]
            writer.commit()
            if product_id is not None:
                _forget(n, client, names["slug"], product_id, gone)


def _server(n: Narrator, client: redis.Redis, broker: redis.Redis) -> None:
    n.step("One Redis server, two logical databases")
    server, memory = client.info("server"), client.info("memory")
    n.say(f"    redis_version {server.get('redis_version')}")
    n.say(f"    maxmemory_policy {memory.get('maxmemory_policy')}")
    n.say(f"    Django's cache (CACHES):       {_where(client)}")
    n.say(f"    Celery's broker (broker_url):  {_where(broker)}")


# --- 1. The cache -----------------------------------------------------------


def _read(slug: str) -> int:
    """Read the product's page through the cache; return the SQL statements sent."""

    def compute():
        return ProductDetailOutput(selectors.product_get(slug=slug)).data

    with CaptureQueriesContext(connection) as captured:
        catalog_cache.product_detail(slug=slug, compute=compute)
    return len(captured.captured_queries)


def _keys(n: Narrator, client: redis.Redis, names: list[str]) -> dict[str, bytes]:
    """Show each cache key's type, TTL and value; return the values."""
    rows, values = [], {}
    for name in names:
        key = store.key(name)
        pipe = client.pipeline(transaction=False)
        pipe.type(key)
        pipe.ttl(key)
        pipe.get(key)
        kind, ttl, value = pipe.execute()
        values[name] = value
        rows.append((key, kind.decode(), _ttl(ttl), _short(value or "(none)")))
    n.table(["key", "type", "ttl", "value"], rows)
    return values


def _cache(n: Narrator, client: redis.Redis, slug: str, product_id: int) -> None:
    n.step("1. Cache: a product page written to Redis, and a version that retires it")
    statements = _read(slug)
    n.say(f"    product_detail(slug={slug!r}): a miss, {statements} SQL statement(s)")
    entry, version = f"detail:{slug}", store.product_version(product_id)
    names = [entry, store.GLOBAL, version, store.CLOCK]
    before = _keys(n, client, names)
    stamp = store.decode(before[entry])["v"]
    ttl = client.ttl(store.key(entry))
    n.expect(
        statements > 0 and 0 < ttl <= store.ENTRY_TTL,
        f"the fill ran SQL and stored one string entry that expires "
        f"(ENTRY_TTL = {store.ENTRY_TTL} s), stamped {stamp}: [global, product]",
    )
    n.say("    (a version never set reads as 0, and no tick of the clock is ever 0)")

    n.say("    versions_bump(Change.of([product])), as the listener does after a write")
    versions_bump(Change.of([product_id]))
    after = _keys(n, client, names)
    moved = store.version_of(after[version])
    n.expect(
        after[entry] == before[entry]
        and moved != stamp[1]
        and moved == store.version_of(after[store.CLOCK]),
        f"nothing was deleted: the entry is still there, still stamped {stamp}, "
        f"but the product's version is now {moved}, the clock's latest tick",
    )
    n.expect(
        client.ttl(store.key(version)) == -1
        and client.ttl(store.key(store.CLOCK)) == -1,
        "the version and the clock have no TTL: they must outlive every entry",
    )
    again = _read(slug)
    restamped = store.decode(client.get(store.key(entry)))["v"]
    n.say(
        f"    product_detail again: {again} SQL statement(s), "
        f"stored stamped {restamped}"
    )
    n.expect(
        again > 0 and restamped == [stamp[0], moved],
        "a stamp that is not current is a miss: the page is computed again and "
        "the fill overwrites the entry with the new stamp",
    )
    n.say("    (who moves the versions, and when: the lab `cache`, chapter 18)")


# --- 2. The rate limiter ------------------------------------------------------


def _rate_limit(n: Narrator, client: redis.Redis) -> None:
    n.step("2. Rate limit: one counter per client and window, INCR and a TTL")
    request = HttpRequest()
    request.method = "POST"
    request.META["REMOTE_ADDR"] = LAB_CLIENT_IP
    key = cache.make_key(TokenIpThrottle.key_for(LAB_CLIENT_IP))
    n.say(
        f"    the token endpoint's per-IP throttle, AUTH_RATE_TOKEN = {LAB_RATE!r} "
        f"for the lab, client {LAB_CLIENT_IP}"
    )
    try:
        with override_settings(AUTH_RATE_TOKEN=LAB_RATE):
            answers, wait = [], None
            for _ in range(4):
                throttle = TokenIpThrottle()
                allowed = throttle.allow_request(request, view=None)
                answers.append(allowed)
                if not allowed:
                    wait = throttle.wait()
        n.say(
            f"    four attempts: {['allowed' if a else 'throttled' for a in answers]}"
        )
        n.say(f"    the throttled one is told Retry-After: {wait} s")
        count, ttl = client.get(key), client.ttl(key)
        n.table(["key", "value", "ttl"], [(key, _short(count), _ttl(ttl))])
        n.expect(
            answers == [True, True, True, False] and int(count) == 4 and 0 < ttl <= 60,
            "3 allowed, the 4th refused and still counted; the key expires with "
            "its one-minute window, so no job ever cleans counters up",
        )
    finally:
        cache.delete(TokenIpThrottle.key_for(LAB_CLIENT_IP))


# --- 3. The broker ------------------------------------------------------------


def _broker(n: Narrator, broker: redis.Redis) -> None:
    n.step("3. Broker: a Celery task message is an entry in a Redis list")
    n.say(f"    LLEN celery -> {broker.llen('celery')}  (the queue the workers read)")
    try:
        with warnings.catch_warnings():
            # Under the test settings tasks run eagerly; send_task publishes
            # all the same, which is what the lab wants to show.
            warnings.simplefilter("ignore", AlwaysEagerIgnored)
            sent = celery_app.send_task(RELAY_TASK, queue=LAB_QUEUE, expires=60)
        n.say(
            f"    send_task({RELAY_TASK!r}) to the queue {LAB_QUEUE!r}: the message "
            "outbox_kick sends after a commit, to a queue no worker reads"
        )
        length, raw = broker.llen(LAB_QUEUE), broker.lindex(LAB_QUEUE, 0)
        n.say(f"    LLEN {LAB_QUEUE} -> {length}")
        message = json.loads(raw)
        body = json.loads(base64.b64decode(message["body"]))
        props = message["properties"]
        n.say(f"    LINDEX {LAB_QUEUE} 0 -> a JSON envelope of {len(raw)} bytes:")
        n.say(f"       headers.task      {message['headers']['task']}")
        n.say(f"       headers.id        {message['headers']['id']}")
        n.say(f"       headers.expires   {message['headers']['expires']}")
        n.say(f"       delivery_info     {json.dumps(props['delivery_info'])}")
        n.say(f"       body (base64)     args {body[0]}, kwargs {body[1]}")
        binding = LAB_BINDINGS[0]
        members = sorted(m.decode(errors="replace") for m in broker.smembers(binding))
        n.say(f"    SMEMBERS {binding} -> {members!r} (kombu's routing table)")
        n.expect(
            length == 1
            and message["headers"]["task"] == RELAY_TASK
            and message["headers"]["id"] == sent.id,
            "one message in the list, naming the task by name and carrying the "
            "task id send_task returned; a worker pops it with BRPOP",
        )
    finally:
        broker.delete(LAB_QUEUE, *LAB_BINDINGS)
    n.expect(
        broker.exists(LAB_QUEUE, *LAB_BINDINGS) == 0,
        "the lab's queue and kombu's tables for it are deleted",
    )


# --- 4. The view buffer -------------------------------------------------------


def _view_buffer(n: Narrator, client: redis.Redis, product_id: int) -> str:
    n.step("4. View buffer: RPUSH on the product page, into the outbox in batches")
    key = buffer_key()
    recorded = record_view(product_id=product_id, user_id=None)
    raw = _newest_view_of(client, key, product_id)
    view = json.loads(raw) if raw else {}
    n.say(f"    record_view(product_id={product_id}, user_id=None) -> {recorded}")
    n.say(f"    LLEN {key} -> {client.llen(key)}")
    n.say(f"    its entry -> {raw.decode() if raw else None}")
    n.expect(
        recorded and view.get("product_id") == product_id,
        "the view is the newest entry of the list, with its event id already",
    )
    event_id = view["id"]
    try:
        moved = _flush(n, event_id)
        n.say(f"    product_views_flush() -> {moved} view(s) moved")
        n.expect(
            client.lpos(key, raw) is None,
            "after the COMMIT the flush trimmed the entry from the list (LTRIM)",
        )
        with job_transaction("lab_redis"), connection.cursor() as cursor:
            rows = n.sql(
                VIEW_SQL, [event_id], cursor=cursor, label="the outbox, read as a job"
            )
        n.expect(
            len(rows) == 1
            and rows[0][1] == "product.viewed"
            and (rows[0][2], rows[0][3]) == ("product", product_id),
            "the view is an outbox event now, its event_id the id it got in Redis",
        )
    finally:
        if raw is not None:
            client.lrem(key, 0, raw)  # in case the flush did not take it
    return event_id


def _newest_view_of(client: redis.Redis, key: str, product_id: int) -> bytes | None:
    """The newest buffered view of the product (others' views may follow it)."""
    for raw in reversed(client.lrange(key, -20, -1)):
        if json.loads(raw).get("product_id") == product_id:
            return raw
    return None


def _flush(n: Narrator, event_id: str) -> int:
    """Flush the buffer until the view is in the outbox.

    A worker's periodic flush (VIEW_FLUSH_INTERVAL) may hold the flush's
    lock, or take the view first, on a development machine: wait for it.
    """
    moved = 0
    for _ in range(50):
        moved += product_views_flush()
        with job_transaction("lab_redis"), connection.cursor() as cursor:
            cursor.execute(VIEW_SQL, [event_id])
            if cursor.fetchone() is not None:
                return moved
        time.sleep(0.1)
    raise LabFailed("the buffered view never reached the outbox: is a flush stuck?")


# --- 5. The event log -----------------------------------------------------------


def _index_rows(collection) -> list[tuple]:
    rows = []
    for index in collection.list_indexes():
        keys = ", ".join(
            f"{field} {'desc' if order == -1 else 'asc'}"
            for field, order in dict(index["key"]).items()
        )
        extra = []
        if index.get("unique"):
            extra.append("unique")
        if "expireAfterSeconds" in index:
            extra.append(f"expireAfterSeconds {index['expireAfterSeconds']}")
        rows.append((collection.name, index["name"], keys, ", ".join(extra)))
    return rows


@contextmanager
def _lab_store(url: str, database: str):
    with override_settings(MONGO_URL=url, MONGO_DB=database):
        event_store.forget_clients()
        try:
            yield event_store.database()
        finally:
            event_store.client().drop_database(database)
            event_store.forget_clients()


def _event_log(n: Narrator, product_id: int, event_id: str) -> None:
    n.step("5. The relay: the outbox event becomes a MongoDB document")
    url = store_url(n)
    with _lab_store(url, f"lab_redis_{product_id}") as db:
        done = event_store.ensure_collections(db)
        n.say(f"    ensure_collections(): {len(done)} step(s), indexes as declared:")
        rows = _index_rows(db[event_store.EVENTS]) + _index_rows(db[event_store.VIEWS])
        n.table(["collection", "index", "keys", "options"], rows, limit=20)
        report = relay_pending(only=[f"product:{product_id}"])
        n.say(
            f"    relay_pending(only=['product:{product_id}']): shipped "
            f"{report.shipped}, {report.new_documents} new document(s)"
        )
        document = db[event_store.VIEWS].find_one({"_id": event_id})
        n.say(f"    db.product_views.findOne({{_id: {event_id!r}}}) ->")
        n.say(f"       {json.dumps(document, default=str)}")
        n.expect(
            document is not None and document["product_id"] == product_id,
            "one document in the expiring collection, its _id the event's id: a "
            "second delivery would match it and change nothing",
        )
        n.expect(
            document["occurred_at"].microsecond % 1000 == 0,
            "occurred_at kept milliseconds only: a BSON date has no microseconds",
        )


# --- Clean up -----------------------------------------------------------------


def _forget(n: Narrator, client, slug: str, product_id: int, gone) -> None:
    n.step("Clean up: the rows, the outbox event, the lab's keys")
    with connections["owner"].cursor() as owner:
        owner.execute("SELECT set_config('app.job', 'lab_redis', false)")
        owner.execute(FORGET_SQL, {"product_id": product_id})
        owner.execute("SELECT set_config('app.job', '', false)")
    # No listener runs here: retire what the deleted rows showed, as it would.
    versions_bump(Change.of(gone, lists=True, categories=True))
    keys = [
        store.key(f"detail:{slug}"),
        store.key("lock", f"detail:{slug}"),
        store.key(store.product_version(product_id)),
    ]
    client.delete(*keys)
    left = client.exists(*keys)
    n.say(f"    deleted the product's rows, its outbox event, and {len(keys)} key(s)")
    n.expect(left == 0, "none of the lab's cache keys is left in Redis")
