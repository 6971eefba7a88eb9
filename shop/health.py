"""GET /healthz: each service's status, and what the shop can do without it.

The contract (DESIGN.md): each service is ok, disabled (not configured) or
down; overall the shop is `ok`, `degraded` with a 200 when an optional
service (the replica, Redis, MongoDB) is down, since it still sells, and
`down` with a 503 only when the primary is, since then it cannot.

Anyone may ask, so anonymous callers get the statuses only. A driver's
error text names hosts, ports and roles, and versions and replica lag help
whoever probes for a weak spot: those go to staff (by session or token) and,
for a service that is down, to the log.
"""

import logging
import threading

import pymongo
from django.conf import settings
from django.db import connections
from django.http import JsonResponse

from shop.accounts.authentication import StrictTokenAuthentication
from shop.cache import CacheUnavailable, redis_ping, redis_version
from shop.sql_files import read_sql

log = logging.getLogger(__name__)

OPTIONAL = ("replica", "redis", "mongo")
# How long /healthz waits for MongoDB to be found and to answer.
MONGO_TIMEOUT_MS = 500


def _down(service, exc):
    error = str(exc).strip().splitlines()[0] if str(exc).strip() else repr(exc)
    log.warning("healthz: %s is down: %s", service, error)
    return {"status": "down", "error": error}


def _version(number):
    """PostgreSQL's server_version_num as text: 150012 -> "15.12"."""
    return f"{number // 10000}.{number % 10000}"


def _postgres(alias):
    try:
        with connections[alias].cursor() as cursor:
            cursor.execute("SELECT 1")
            version = cursor.connection.info.server_version
        return {"status": "ok", "version": _version(version)}
    except Exception as exc:  # any failure means "down": report it, never raise
        return _down(alias, exc)


def _replica():
    try:
        with connections["replica"].cursor() as cursor:
            cursor.execute(read_sql("shop/sql/queries/replica_status_v01.sql"))
            in_recovery, lag = cursor.fetchone()
            version = cursor.connection.info.server_version
        if not in_recovery:
            return _down("replica", "REPLICA_DATABASE_URL is not a standby")
        return {
            "status": "ok",
            "lag_seconds": round(float(lag), 3),
            "version": _version(version),
        }
    except Exception as exc:
        return _down("replica", exc)


def _redis():
    if not settings.REDIS_ENABLED:
        return {
            "status": "disabled",
            "detail": "REDIS_URL is empty: local-memory cache, eager Celery",
        }
    try:
        redis_ping()
    except CacheUnavailable as exc:
        return _down("redis", exc)
    return {"status": "ok", "version": redis_version()}


_mongo_clients: dict[str, pymongo.MongoClient] = {}
_mongo_lock = threading.Lock()


def mongo_client() -> pymongo.MongoClient:
    """The process's client for MONGO_URL, made on first use.

    A MongoClient runs monitor threads and a connection pool of its own, so
    one per URL serves the whole process; made lazily, after a server has
    forked its workers, because a client does not survive a fork.
    """
    url = settings.MONGO_URL
    with _mongo_lock:
        client = _mongo_clients.get(url)
        if client is None:
            client = _mongo_clients[url] = pymongo.MongoClient(
                url,
                serverSelectionTimeoutMS=MONGO_TIMEOUT_MS,
                connectTimeoutMS=MONGO_TIMEOUT_MS,
                appname="shop",
            )
    return client


def _mongo():
    if not settings.MONGO_URL:
        return {
            "status": "disabled",
            "detail": "MONGO_URL is empty: no event store configured",
        }
    try:
        client = mongo_client()
        client.admin.command("ping")
        return {"status": "ok", "version": client.server_info().get("version")}
    except Exception as exc:
        return _down("mongo", exc)


def _is_staff(request) -> bool:
    """Whether the caller is staff, by session or by token.

    False whenever that cannot be told: a malformed or unknown token, or a
    primary that does not answer the lookup.
    """
    try:
        if request.user.is_authenticated:
            return request.user.is_staff
        found = StrictTokenAuthentication().authenticate(request)
        return bool(found and found[0].is_staff)
    except Exception:  # AuthenticationFailed, or the database: not staff
        return False


def healthz(request):
    services = {
        "postgres": _postgres("default"),
        "replica": _replica(),
        "redis": _redis(),
        "mongo": _mongo(),
    }
    if services["postgres"]["status"] == "down":
        overall, status = "down", 503
    elif any(services[name]["status"] == "down" for name in OPTIONAL):
        overall, status = "degraded", 200
    else:
        overall, status = "ok", 200
    # Staff only where the primary answered: it holds the sessions and tokens.
    if overall == "down" or not _is_staff(request):
        services = {name: {"status": s["status"]} for name, s in services.items()}
    return JsonResponse({"status": overall, "services": services}, status=status)
