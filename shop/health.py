"""GET /healthz: each service's status, and what the shop can do without it.

The contract (DESIGN.md): each service is ok, disabled (not configured) or
down; overall the shop is `ok`, `degraded` with a 200 when an optional
service (the replica, Redis, MongoDB) is down, since it still sells, and
`down` with a 503 only when the primary is, since then it cannot.

The primary is asked on a connection of its own, opened for the probe with
a short timeout and closed after it, never through the request pool. Through
the pool, a stopped primary cost every probe the pool's whole timeout (10 s,
past the 8 s docker compose gives a probe), and a pool merely full of busy
requests made a healthy primary look down. How full the pool is comes
beside it, for staff: a full or exhausted pool is load, not an outage.

Anyone may ask, so anonymous callers get the statuses only. A driver's
error text names hosts, ports and roles, and versions, replica lag and the
pool's numbers help whoever probes for a weak spot: those go to staff (by
session or token), and are fetched only for them; a service that is down
goes to the log, once a minute per process rather than on every probe.
"""

import logging
import threading
import time

import psycopg
import pymongo
from django.conf import settings
from django.db import connections
from django.http import JsonResponse

from shop.accounts.authentication import StrictTokenAuthentication
from shop.cache import CacheUnavailable, redis_ping, redis_version
from shop.outbox import outbox_backlog
from shop.sql_files import read_sql

log = logging.getLogger(__name__)

OPTIONAL = ("replica", "redis", "mongo")
# How long /healthz waits for MongoDB to be found and to answer.
MONGO_TIMEOUT_MS = 500
# Seconds /healthz waits for the primary to connect, then to answer.
PRIMARY_TIMEOUT = 2
# Seconds between two log lines about the same service being down.
LOG_EVERY = 60.0

_logged_at: dict[str, float] = {}
_logged_lock = threading.Lock()


def _log_now(subject) -> bool:
    """Whether to log about `subject` now: once per LOG_EVERY, per process.

    Every probe of a load balancer or of compose would otherwise add a line
    for as long as the outage lasts.
    """
    now = time.monotonic()
    with _logged_lock:
        last = _logged_at.get(subject)
        if last is not None and now - last < LOG_EVERY:
            return False
        _logged_at[subject] = now
        return True


def _up(service, **details):
    with _logged_lock:
        _logged_at.pop(service, None)  # the next outage is logged at once
    return {"status": "ok", **details}


def _down(service, exc):
    error = str(exc).strip().splitlines()[0] if str(exc).strip() else repr(exc)
    if _log_now(service):
        log.warning(
            "healthz: %s is down: %s (said once a minute while it lasts)",
            service,
            error,
        )
    return {"status": "down", "error": error}


def _version(number):
    """PostgreSQL's server_version_num as text: 150012 -> "15.12"."""
    return f"{number // 10000}.{number % 10000}"


def _primary():
    """Ask the primary on a connection of this probe's own, then close it."""
    params = connections["default"].get_connection_params()
    params["connect_timeout"] = PRIMARY_TIMEOUT
    try:
        # A server that connects and then stalls is cut off too. The timeout
        # is transaction-local: as a startup option pgbouncer would refuse
        # it, and set for the session it would stay on pgbouncer's server
        # connection for the next client.
        with psycopg.connect(**params, autocommit=False) as connection:
            connection.execute(
                "SELECT set_config('statement_timeout', %s, true)",
                [f"{PRIMARY_TIMEOUT}s"],
            )
            connection.execute("SELECT 1")
            version = connection.info.server_version
        return _up("postgres", version=_version(version))
    except Exception as exc:  # any failure means "down": report it, never raise
        return _down("postgres", exc)


def pool_state(stats: dict) -> dict:
    """The request pool's numbers (psycopg_pool's get_stats()) and a verdict.

    `exhausted`: requests are waiting for a connection right now. `full`:
    every connection the pool may open is open and in use, none waits yet.
    """
    size, idle = stats.get("pool_size", 0), stats.get("pool_available", 0)
    max_size, waiting = stats.get("pool_max", 0), stats.get("requests_waiting", 0)
    if waiting:
        status = "exhausted"
    elif size >= max_size and not idle:
        status = "full"
    else:
        status = "ok"
    return {
        "status": status,
        "in_use": size - idle,
        "idle": idle,
        "max_size": max_size,
        "waiting": waiting,
    }


def _pool():
    """The state of this process's pool for `default`; None if unpooled."""
    pool = connections["default"].pool
    if pool is None:
        return None
    state = pool_state(pool.get_stats())
    if state["status"] == "exhausted" and _log_now("pool"):
        log.warning(
            "healthz: the database pool of this process is exhausted: %s "
            "requests wait, %s of %s connections in use. Find what holds "
            "them, or raise DATABASE_THREADS, which sizes the pool "
            "(shop/settings/base.py: the formula above DATABASE_THREADS) "
            "and must still fit the servers' connection budget.",
            state["waiting"],
            state["in_use"],
            state["max_size"],
        )
    return state


def _replica():
    try:
        with connections["replica"].cursor() as cursor:
            cursor.execute(read_sql("shop/sql/queries/replica_status_v01.sql"))
            in_recovery, lag = cursor.fetchone()
            version = cursor.connection.info.server_version
        if not in_recovery:
            return _down("replica", "REPLICA_DATABASE_URL is not a standby")
        return _up(
            "replica", lag_seconds=round(float(lag), 3), version=_version(version)
        )
    except Exception as exc:
        return _down("replica", exc)


def _redis(*, details):
    if not settings.REDIS_ENABLED:
        return {
            "status": "disabled",
            "detail": "REDIS_URL is empty: local-memory cache, eager Celery",
        }
    try:
        redis_ping()
    except CacheUnavailable as exc:
        return _down("redis", exc)
    # INFO is a second round trip: for staff only, who see it.
    return _up("redis", **({"version": redis_version()} if details else {}))


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


def _mongo(*, details):
    if not settings.MONGO_URL:
        return {
            "status": "disabled",
            "detail": "MONGO_URL is empty: no event store configured; events "
            "stay in the outbox",
        }
    try:
        client = mongo_client()
        client.admin.command("ping")
        if not details:
            return _up("mongo")
        # buildInfo is a second round trip: for staff only, who see it.
        return _up("mongo", version=client.server_info().get("version"))
    except Exception as exc:
        return _down("mongo", exc)


def _outbox():
    """The events waiting to be shipped to the event log: staff only.

    A backlog that grows while MongoDB is up means the relay is not running
    (no worker, no beat); while it is down, it is the events kept safe.
    """
    try:
        backlog = outbox_backlog()
    except Exception as exc:  # the primary went away since its probe
        return {"status": "unknown", "error": str(exc).splitlines()[0]}
    return {
        "pending": backlog.pending,
        "oldest_pending_at": backlog.oldest.isoformat() if backlog.oldest else None,
        # Refused by MongoDB for good: each needs a person (the relay's log).
        "refused": backlog.refused,
    }


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
    postgres = _primary()
    # Staff only where the primary answered: it holds the sessions and tokens.
    # Anonymous probes (compose, a load balancer) carry neither, so they take
    # no connection from the pool at all. A staff caller's lookup does, and
    # with the pool exhausted it waits its turn like any request (up to the
    # pool's timeout); the log says the pool is exhausted either way.
    staff = postgres["status"] == "ok" and _is_staff(request)
    services = {
        "postgres": postgres,
        "replica": _replica(),
        "redis": _redis(details=staff),
        "mongo": _mongo(details=staff),
    }
    pool = _pool()
    if services["postgres"]["status"] == "down":
        overall, status = "down", 503
    elif any(services[name]["status"] == "down" for name in OPTIONAL):
        overall, status = "degraded", 200
    else:
        overall, status = "ok", 200
    if staff:
        if pool is not None:
            services["postgres"]["pool"] = pool
        services["mongo"]["outbox"] = _outbox()
    else:
        services = {name: {"status": s["status"]} for name, s in services.items()}
    return JsonResponse({"status": overall, "services": services}, status=status)
