"""Redis, through one small module: counters in the cache, and whether it answers.

Django's cache is Redis whenever REDIS_URL is set (shop/settings/base.py), so
a stopped Redis is met at run time, by each call, and never decided once at
import. The calls here turn Redis's failures into one error,
`CacheUnavailable`, that callers degrade on; views never touch Redis.
"""

import threading
from urllib.parse import urlsplit

import redis
from django.conf import settings
from django.core.cache import cache
from django_redis.exceptions import ConnectionInterrupted

# What a cache call raises when Redis does not answer: django-redis wraps
# redis-py's connection and timeout errors in ConnectionInterrupted; redis-py
# itself raises RedisError (refused, timed out, AUTH or TLS refused).
REDIS_ERRORS = (ConnectionInterrupted, redis.RedisError)


class CacheUnavailable(Exception):
    """Redis did not answer; the caller decides how to do without it."""


def counter_hit(key: str, *, window: int) -> int:
    """Count one hit on `key` in a fixed window of `window` seconds.

    Return the hits in the current window, this one included. `add` opens
    the window with its expiry and `incr` keeps that expiry; both are atomic
    in Redis (SET NX, INCRBY) and in the local-memory cache, so concurrent
    hits are each counted once.
    """
    try:
        if cache.add(key, 1, window):
            return 1
        try:
            return cache.incr(key)
        except ValueError:  # the window expired between add() and incr()
            cache.add(key, 1, window)
            return 1
    except REDIS_ERRORS as exc:
        raise CacheUnavailable(str(exc)) from exc


def counter_ttl(key: str) -> int | None:
    """Seconds left in `key`'s window; None when the cache cannot say.

    django-redis knows a key's TTL; the local-memory cache does not.
    """
    ttl = getattr(cache, "ttl", None)
    if ttl is None:
        return None
    try:
        return ttl(key)
    except REDIS_ERRORS:
        return None


_clients: dict[str, redis.Redis] = {}
_clients_lock = threading.Lock()


def redis_client() -> redis.Redis:
    """The process's client for REDIS_URL, made on first use.

    redis-py reads everything from the URL: rediss:// for TLS, and the user
    name and password percent-decoded ("p%40ss" is "p@ss"). A client holds a
    pool of connections and reconnects by itself once Redis is back, so one
    per URL serves the whole process.
    """
    url = settings.REDIS_URL
    with _clients_lock:
        client = _clients.get(url)
        if client is None:
            client = _clients[url] = redis.Redis.from_url(
                url,
                socket_connect_timeout=settings.REDIS_TIMEOUT,
                socket_timeout=settings.REDIS_TIMEOUT,
            )
    return client


def redis_where() -> str:
    """REDIS_URL without its credentials, for messages and logs."""
    parts = urlsplit(settings.REDIS_URL)
    netloc = parts.hostname or ""
    if parts.port:
        netloc += f":{parts.port}"
    return parts._replace(netloc=netloc).geturl()


def redis_ping() -> None:
    """Ask Redis whether it answers; CacheUnavailable if it does not.

    Any failure counts, a URL redis-py cannot use included (it says so only
    when it first connects): this is what /healthz asks, and it must answer.
    """
    try:
        redis_client().ping()
    except Exception as exc:
        raise CacheUnavailable(f"Redis at {redis_where()}: {exc}") from exc


def redis_version() -> str | None:
    """The server's version, or None if it will not say (INFO may be denied)."""
    try:
        return redis_client().info("server").get("redis_version")
    except Exception:
        return None
