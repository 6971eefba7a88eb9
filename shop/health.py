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

Two more answers:

- `broker`: Celery's broker, pinged on a connection of its own with a short
  timeout; `disabled` without Redis (tasks then run inside the request).
  Down, tasks cannot be enqueued, but the shop still sells: degraded.
- `wal_archive`: the primary's WAL archiver (pg_stat_archiver, read on the
  probe's connection as the app's role, which may read it: no other role
  or grant is needed). `failing` when its last failure is newer than its
  last success, `disabled` with archive_mode off, `unknown` when the
  primary did not answer. A failing archive makes the shop `degraded`: it
  still sells, but point-in-time recovery can restore only up to the last
  segment archived, and pg_wal grows until archiving works again. Staff
  see the counts, segments and times.

Beside it, for load balancers and orchestrators (Kubernetes' probes):
GET /livez answers 200 while the process serves requests, touching no
database or service, so that an outage elsewhere never gets a healthy
process restarted; GET /readyz answers 503 only when the primary does not
answer, the one outage that stops the shop taking orders. An optional
service down keeps the node in rotation: /healthz says `degraded`.
"""

import logging
import threading
import time

import psycopg
import pymongo
from django.conf import settings
from django.db import connections
from django.http import JsonResponse
from django.views.decorators.cache import never_cache

from shop.accounts.authentication import StrictTokenAuthentication
from shop.cache import CacheUnavailable, redis_ping, redis_version
from shop.celery import app as celery_app
from shop.outbox import outbox_backlog
from shop.sql_files import read_sql

log = logging.getLogger(__name__)

OPTIONAL = ("replica", "redis", "mongo", "broker")
# How long /healthz waits for MongoDB to be found and to answer.
MONGO_TIMEOUT_MS = 500
# Seconds /healthz waits for the primary to connect, then to answer.
PRIMARY_TIMEOUT = 2
# Seconds /healthz waits for Celery's broker to connect, then to answer.
BROKER_TIMEOUT = 1
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
    return _probe_primary(archive=False)[0]


def _probe_primary(*, archive):
    """(the primary's status, its WAL archiver's or None), on one connection.

    `archive`: read pg_stat_archiver too, on the same connection; /readyz
    asks only whether the primary answers.
    """
    params = connections["default"].get_connection_params()
    params["connect_timeout"] = PRIMARY_TIMEOUT
    archiver = None  # not asked
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
            if archive:
                archiver = _archiver(connection)
        return _up("postgres", version=_version(version)), archiver
    except Exception as exc:  # any failure means "down": report it, never raise
        return _down("postgres", exc), {"status": "unknown"} if archive else None


def _archiver(connection) -> dict:
    try:
        cursor = connection.execute(read_sql("shop/sql/queries/wal_archive_v01.sql"))
        names = [column.name for column in cursor.description]
        row = dict(zip(names, cursor.fetchone(), strict=True))
    except psycopg.Error as exc:
        return {"status": "unknown", "error": str(exc).strip().splitlines()[0]}
    return archive_state(row)


def archive_state(row: dict) -> dict:
    """The WAL archiver's verdict from pg_stat_archiver's row and archive_mode.

    Failing: the last failure is newer than the last success (or nothing was
    ever archived). A failure followed by a success is over: archive_command
    retries the same segment until it works.
    """
    if row["archive_mode"] == "off":
        return {
            "status": "disabled",
            "detail": "archive_mode is off: no WAL archive, no point-in-time recovery",
        }
    failed, archived = row["last_failed_time"], row["last_archived_time"]
    failing = failed is not None and (archived is None or failed > archived)
    details = {
        "failed_count": row["failed_count"],
        "last_archived_wal": row["last_archived_wal"],
        "last_archived_time": archived.isoformat() if archived else None,
        "last_failed_wal": row["last_failed_wal"],
        "last_failed_time": failed.isoformat() if failed else None,
    }
    if not failing:
        with _logged_lock:
            _logged_at.pop("wal_archive", None)
        return {"status": "ok", **details}
    if _log_now("wal_archive"):
        log.warning(
            "healthz: the WAL archiver is failing: %s could not be archived "
            "(last at %s; last success %s at %s). Point-in-time recovery "
            "stops at the last archived segment and pg_wal grows until "
            "archive_command works: see the primary's log "
            "(said once a minute while it lasts)",
            row["last_failed_wal"],
            details["last_failed_time"],
            row["last_archived_wal"],
            details["last_archived_time"],
        )
    return {"status": "failing", **details}


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


def _broker():
    """Celery's broker: connect and ping it, on a connection of its own."""
    if not settings.REDIS_ENABLED:
        return {
            "status": "disabled",
            "detail": "REDIS_URL is empty: no broker, Celery runs tasks inside "
            "the request",
        }
    timeouts = {
        "socket_timeout": BROKER_TIMEOUT,
        "socket_connect_timeout": BROKER_TIMEOUT,
    }
    try:
        with celery_app.connection_for_write(
            connect_timeout=BROKER_TIMEOUT, transport_options=timeouts
        ) as connection:
            # No retries: a probe reports, the next probe asks again. Over
            # Redis, connecting sends a PING and waits for its answer.
            connection.ensure_connection(max_retries=0)
    except Exception as exc:
        return _down("broker", exc)
    return _up("broker")


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


@never_cache
def livez(request):
    """Liveness: the process serves requests. Asks no database, no service."""
    return JsonResponse({"status": "ok"})


@never_cache
def readyz(request):
    """Readiness: the shop can take orders, which needs the primary alone.

    The same probe as /healthz's, on a connection of its own with a short
    timeout: a replica, Redis or MongoDB down keeps the node in rotation.
    """
    if _primary()["status"] == "ok":
        return JsonResponse({"status": "ok"})
    return JsonResponse(
        {
            "status": "down",
            "detail": "The primary database does not answer: no orders can be taken.",
        },
        status=503,
    )


def healthz(request):
    postgres, archive = _probe_primary(archive=True)
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
        "broker": _broker(),
        "wal_archive": archive,
    }
    pool = _pool()
    if services["postgres"]["status"] == "down":
        overall, status = "down", 503
    elif any(services[name]["status"] == "down" for name in OPTIONAL) or (
        # It sells, but a restore could not reach the last orders.
        archive["status"] == "failing"
    ):
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
