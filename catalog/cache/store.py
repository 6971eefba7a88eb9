"""Redis for the catalog cache: versions, entries, locks and counters.

The cache is on when Django's default cache is django-redis (REDIS_URL
set) and CATALOG_CACHE is. A local-memory cache (REDIS_URL empty) is one
per process, which no other process's write can reach, so the catalog is
then read from the database every time: a cache that cannot be told about
a write would be stale.

Everything goes through django-redis's own client (the connection pool it
keeps for CACHES), with keys and JSON values made here: a JSON body is what
the API sends anyway, and unlike django-redis's pickles it can be read back
by anything. Every Redis error becomes `Unavailable`, on which callers read
the database instead. After an error this process leaves Redis alone for
RETRY_AFTER seconds, so that an unreachable server (a dropped network, not
a refused connection) costs one request REDIS_TIMEOUT, not every request.
"""

import json
import logging
import math
import secrets
import threading
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager

from django.conf import settings
from django.core.cache import caches
from django.db import connections
from django_redis.cache import RedisCache

from shop.cache import REDIS_ERRORS

log = logging.getLogger("catalog.cache")

# Seconds an entry lives. Versions retire entries the moment they are wrong;
# this only returns the memory of entries nobody asks for any more.
ENTRY_TTL = 3600
# Milliseconds a fill's lock lives: a holder that dies (a killed process)
# blocks its key's fill for at most this long.
LOCK_TTL_MS = 5000
# Seconds this process reads the database without asking Redis, after Redis
# failed it.
RETRY_AFTER = 1.0

# The stats: per kind of entry, how often it was asked for, not found
# valid, and computed (once per fill, however many requests waited for it).
KINDS = ("categories", "list", "detail")
EVENTS = ("lookups", "misses", "fills")

# One script, so that the clock's tick and the versions it sets move
# together. A version is never a counter of its own: a version key that
# Redis lost would start again at 1 and bring back entries stamped 1. The
# clock only grows, and when it is lost it starts again from the current
# time in microseconds, above any tick it gave before.
BUMP_SCRIPT = """
if redis.call('EXISTS', KEYS[1]) == 0 then
    redis.call('SET', KEYS[1], ARGV[1])
end
local tick = redis.call('INCR', KEYS[1])
local versions = tonumber(ARGV[2])
for i = 2, versions + 1 do
    redis.call('SET', KEYS[i], tick)
end
for i = versions + 2, #KEYS do
    redis.call('SET', KEYS[i], 1, 'EX', ARGV[3])
end
return tick
"""
# Release a lock only if it is still this holder's: one that outlived
# LOCK_TTL_MS may belong to the next holder by now.
UNLOCK_SCRIPT = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
    return redis.call('DEL', KEYS[1])
end
return 0
"""


class Unavailable(Exception):
    """The catalog cache cannot be used now: no Redis, or Redis did not answer."""


_state_lock = threading.Lock()
_skip_until = 0.0


def on_redis() -> bool:
    """Whether Django's cache is Redis, where the versions live."""
    return isinstance(caches["default"], RedisCache)


def enabled() -> bool:
    """Whether catalog reads go through the cache (Redis, and CATALOG_CACHE on).

    Versions move whenever the cache is Redis, even with CATALOG_CACHE off
    in this process: another process may serve from the cache.
    """
    return settings.CATALOG_CACHE and on_redis()


def _failed(exc: BaseException) -> Unavailable:
    global _skip_until
    with _state_lock:
        first = time.monotonic() >= _skip_until
        _skip_until = time.monotonic() + RETRY_AFTER
    if first:
        log.warning(
            "catalog cache: Redis did not answer (%s); reading the database "
            "for the next %ss",
            exc,
            RETRY_AFTER,
        )
    return Unavailable(str(exc))


def forget_failures() -> None:
    """Ask Redis again at once (tests, after a Redis of their own came back)."""
    global _skip_until
    with _state_lock:
        _skip_until = 0.0


@contextmanager
def redis(*, even_after_failure: bool = False) -> Iterator:
    """The Redis client, with its errors turned into Unavailable.

    Reads skip Redis for RETRY_AFTER after a failure; writes of versions
    (`even_after_failure`) always try, since a lost one leaves entries
    stale and the database cannot fall back for it.
    """
    cache = caches["default"]
    if not isinstance(cache, RedisCache):
        raise Unavailable("the cache is not Redis (REDIS_URL is empty)")
    if not even_after_failure and time.monotonic() < _skip_until:
        raise Unavailable("Redis failed a moment ago")
    try:
        yield cache.client.get_client(write=True)
    except REDIS_ERRORS as exc:
        raise _failed(exc) from exc


def key(*parts) -> str:
    """A key of this database's catalog cache.

    The database's name is part of it: test runs, benchmarks and the
    development server may share one Redis, and rows of one database must
    never be served for another's.
    """
    return ":".join(["shop", "catalog", _database(), *map(str, parts)])


def _database() -> str:
    return connections["default"].settings_dict["NAME"]


# --- Versions ---------------------------------------------------------------

CLOCK = "clock"
GLOBAL = "v:global"
LISTS = "v:lists"
CATEGORIES = "v:categories"


def product_version(product_id: int) -> str:
    return f"v:p:{product_id}"


def marker_scope(name: str) -> str:
    """The read-your-writes scope (shop/replica.py) of version `name`.

    A write marks it before it moves the version, and a fill of an entry
    stamped with that version reads the primary while the marker lives
    (catalog/cache/reads.py:_fill_reads). The database is part of it, as
    of the keys: a write to one database says nothing of another's rows.
    """
    return ":".join(["catalog", _database(), name])


def version_of(raw) -> int:
    """A version as read by MGET: never set counts as 0."""
    return int(raw) if raw is not None else 0


def bump(names: Iterable[str], *, markers=(), marker_seconds: int = 0) -> int:
    """Give each version in `names` a new value, one tick of the clock; return it.

    `markers`, the cache keys of read-your-writes markers, are set in the
    same script, for `marker_seconds`: the versions and their markers move
    together or not at all. Set apart, a bump that landed after its markers
    failed would let another process fill the new version from a replica
    that has not replayed the write, and keep that entry until it expires.
    """
    names, markers = list(names), list(markers)
    with redis(even_after_failure=True) as client:
        script = client.register_script(BUMP_SCRIPT)
        now_us = time.time_ns() // 1000
        return int(
            script(
                keys=[key(CLOCK), *map(key, names), *markers],
                # EX takes whole seconds: round a fractional window up.
                args=[now_us, len(names), max(1, math.ceil(marker_seconds))],
            )
        )


# --- Entries ----------------------------------------------------------------


def encode(value) -> bytes:
    return json.dumps(value, separators=(",", ":")).encode()


def decode(raw):
    return None if raw is None else json.loads(raw)


def get(name: str):
    """One entry's raw value (the lab shows one)."""
    with redis() as client:
        return client.get(key(name))


def mget(client, names: list[str]) -> list:
    return client.mget([key(name) for name in names]) if names else []


def put_many(entries: dict[str, object], *, fill_of: str) -> None:
    """Store a fill's entries, and count the fill of kind `fill_of`.

    A failure only loses them: the caller already has its answer.
    """
    try:
        with redis() as client:
            pipe = client.pipeline(transaction=False)
            for name, value in entries.items():
                pipe.set(key(name), encode(value), ex=ENTRY_TTL)
            pipe.incr(stat_key(fill_of, "fills"))
            pipe.execute()
    except Unavailable:
        pass


# --- Locks --------------------------------------------------------------------


def lock_acquire(name: str, *, missed: str | None = None) -> str | None:
    """Take the fill lock of entry `name`; its token, or None if someone holds it.

    `missed`: also count a miss of that kind, in the same round trip.
    """
    token = secrets.token_hex(8)
    with redis() as client:
        pipe = client.pipeline(transaction=False)
        if missed is not None:
            pipe.incr(stat_key(missed, "misses"))
        pipe.set(key("lock", name), token, nx=True, px=LOCK_TTL_MS)
        taken = pipe.execute()[-1]
    return token if taken else None


def lock_release(name: str, token: str) -> None:
    try:
        with redis() as client:
            client.register_script(UNLOCK_SCRIPT)(
                keys=[key("lock", name)], args=[token]
            )
    except Unavailable:
        pass  # it expires by itself


# --- Stats ----------------------------------------------------------------------


def stat_key(kind: str, event: str) -> str:
    return key("stats", kind, event)


def stats() -> dict[str, dict[str, int]]:
    """Every counter, per kind; Unavailable if Redis does not answer."""
    names = [(kind, event) for kind in KINDS for event in EVENTS]
    with redis(even_after_failure=True) as client:
        values = client.mget([stat_key(kind, event) for kind, event in names])
    counts = {kind: {} for kind in KINDS}
    for (kind, event), raw in zip(names, values, strict=True):
        counts[kind][event] = int(raw or 0)
    return counts


def stats_reset() -> None:
    with redis(even_after_failure=True) as client:
        client.delete(*[stat_key(kind, event) for kind in KINDS for event in EVENTS])


def stats_report() -> dict:
    """The counters for staff, and whether they could be read: ok, down or disabled.

    Hits are the lookups that found a valid entry: lookups minus misses.
    """
    if not on_redis():
        return {"status": "disabled", "kinds": None}
    try:
        counts = stats()
    except Unavailable:
        return {"status": "down", "kinds": None}
    for events in counts.values():
        events["hits"] = events["lookups"] - events["misses"]
    return {"status": "ok", "kinds": counts}
