"""Settings shared by every environment. All of them come from the environment.

Defaults point at the project's own local services (scripts/services.sh):
the primary on 127.0.0.1:55432, the streaming replica on :55433, Redis on 6379.
"""

import logging
import os
from pathlib import Path

import dj_database_url
from django.core.exceptions import ImproperlyConfigured

log = logging.getLogger("shop.settings")

BASE_DIR = Path(__file__).resolve().parent.parent.parent


def env(name, default=None):
    return os.environ.get(name, default)


def env_bool(name, default=False):
    value = os.environ.get(name)
    if value is None:
        return default
    return value.strip().lower() in {"1", "true", "yes", "on"}


SECRET_KEY = env("DJANGO_SECRET_KEY", "dev-only-insecure-key-change-me")
DEBUG = env_bool("DJANGO_DEBUG", False)
ALLOWED_HOSTS = [
    h for h in env("DJANGO_ALLOWED_HOSTS", "127.0.0.1,localhost").split(",") if h
]

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django.contrib.postgres",
    "rest_framework",
    "rest_framework.authtoken",
    "drf_spectacular",
    # Swagger UI and ReDoc as static files, pinned in requirements.txt.
    "drf_spectacular_sidecar",
    "shop",
    "shop.accounts",
    "catalog",
    "orders",
    "analytics",
]

MIDDLEWARE = [
    # First: the request id (X-Request-ID) labels every line logged by what
    # follows, and the access line times and counts the SQL of all of it
    # (shop/observability/middleware.py).
    "shop.observability.middleware.RequestIdMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    # A database outage outside DRF (the admin, the login forms): a 503, as
    # in the API, instead of handler500's 500.
    "shop.middleware.DatabaseUnavailableMiddleware",
    # The login forms' rate limits: after CSRF's check, before the admin's
    # views run (shop/accounts/login_throttling.py).
    "shop.accounts.login_throttling.LoginRateLimitMiddleware",
    # Where the request's reads go, the replica or the primary: after
    # authentication, which it asks whether the client is anonymous.
    "shop.middleware.ReadReplicaMiddleware",
    # Last: it calls the admin's views itself (shop/middleware.py).
    "shop.middleware.AdminStaffContextMiddleware",
]

ROOT_URLCONF = "shop.urls"
WSGI_APPLICATION = "shop.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

# --- Databases -------------------------------------------------------------
# Six aliases, five roles (DESIGN.md "Database roles"):
#   default  -> shop_app on the primary: every request, shell and worker query
#   owner    -> shop_owner on the primary: migrations and DDL labs only
#   replica  -> shop_app on the streaming replica: reads that tolerate lag
#   readonly -> shop_readonly on the replica: analytics reads, SELECT only
#   loader   -> shop_loader on the primary: the seed's COPY, which row-level
#               security would refuse (BYPASSRLS; chapter 22); nothing else
#   monitor  -> shop_monitor on the primary: pg_stat_statements and the
#               statistics views (pg_read_all_stats), no table (chapter 24)
DATABASE_URL = env("DATABASE_URL", "postgres://shop_app:shop_app@127.0.0.1:55432/shop")
OWNER_DATABASE_URL = env(
    "OWNER_DATABASE_URL", "postgres://shop_owner:shop_owner@127.0.0.1:55432/shop"
)
REPLICA_DATABASE_URL = env(
    "REPLICA_DATABASE_URL", "postgres://shop_app:shop_app@127.0.0.1:55433/shop"
)
READONLY_DATABASE_URL = env(
    "READONLY_DATABASE_URL",
    "postgres://shop_readonly:shop_readonly@127.0.0.1:55433/shop",
)
LOADER_DATABASE_URL = env(
    "LOADER_DATABASE_URL", "postgres://shop_loader:shop_loader@127.0.0.1:55432/shop"
)
MONITOR_DATABASE_URL = env(
    "MONITOR_DATABASE_URL",
    "postgres://shop_monitor:shop_monitor@127.0.0.1:55432/shop",
)
# The local services accept TCP only over TLS, with a certificate signed by
# the CA scripts/services.sh makes: verify it, name included. Elsewhere
# (docker compose, a managed server) there is no such CA, so encrypt when the
# server offers it; DB_SSLMODE / DB_SSLROOTCERT set the policy explicitly.
LOCAL_CA = BASE_DIR / "var" / "pg" / "tls" / "ca.crt"
DB_SSLROOTCERT = env("DB_SSLROOTCERT", str(LOCAL_CA) if LOCAL_CA.is_file() else "")
DB_SSLMODE = env("DB_SSLMODE", "verify-full" if DB_SSLROOTCERT else "prefer")


# One database name for every alias, whatever the URLs say: `make security`
# points the whole app (primary, replica, every role) at a scratch database
# with this alone, so a new alias built by database() is covered too.
SHOP_DATABASE = env("SHOP_DATABASE", "")


# Django's psycopg pool (chapter 16): connections stay open between
# requests instead of one being opened per request. Every alias that the web
# app and the workers use is pooled: `default`, `replica` and `readonly`
# (databases() below). The sizes are per process, from the number of threads
# that use the database in one process, by this formula:
#
#     max_size = threads + max(2, threads // 4)
#
# Django gives each thread its own connection per alias, so a process never
# holds more connections of one alias than it has threads; the headroom is
# for connections just returned, which the pool resets or checks before
# another thread may have them. All the processes that share the servers
# (web workers and Celery's, DATABASE_PROCESSES) must fit in what each
# server accepts, max_connections less a reserve:
#
#     primary: processes x (max_size of default + threads)
#     replica: processes x (max_size of replica + max_size of readonly)
#
# "+ threads": the fake payment gateway keeps a connection of its own per
# thread (orders/payments.py). Through pgbouncer the primary sees only
# pgbouncer's server pool, PGBOUNCER_POOL_SIZE, and the processes'
# connections are pgbouncer's clients, at most PGBOUNCER_MAX_CLIENT_CONN.
# connection_budget() computes all of it and refuses settings that break it;
# local.py, production.py and test.py each set their own threads and
# processes. Every other pool option is set here, in database().
DATABASE_THREADS = int(env("DATABASE_THREADS", "8"))
DATABASE_PROCESSES = int(env("DATABASE_PROCESSES", "1"))
# The servers' max_connections (scripts/services.sh and docker-compose.yml
# both set 200), and what the pools must leave of it: the 3 connections
# PostgreSQL reserves for superusers, migrations, the seed, /healthz's own
# probes, monitoring and a psql or two.
DATABASE_MAX_CONNECTIONS = int(env("DATABASE_MAX_CONNECTIONS", "200"))
DATABASE_RESERVED_CONNECTIONS = int(env("DATABASE_RESERVED_CONNECTIONS", "10"))


def pool_size(threads, *, min_size=1):
    """The size of a pool for a process whose `threads` threads use it."""
    return {"min_size": min_size, "max_size": threads + max(2, threads // 4)}


DATABASE_POOL = pool_size(DATABASE_THREADS)
# Seconds a request waits for a pooled connection before the pool gives up,
# which the API answers as a 503 `database_unavailable`.
DATABASE_POOL_TIMEOUT = 10
# The replica's pools wait much less: their readers can read the primary
# instead. A replica that refuses connections costs no wait at all
# (refused_fast, shop/db_backend/base.py); this bounds what a busy or hung
# one costs a request.
DATABASE_REPLICA_POOL_TIMEOUT = 1
# Seconds one attempt to open a connection keeps retrying a server that
# refuses it (psycopg_pool's reconnect_timeout, 300 by default). Within an
# attempt psycopg_pool waits 1, 2, 4, 8 ... s between tries, so after a
# longer outage its next try could come minutes after the server was back.
# Cut off at 2 s, no wait exceeds about a second; the pool then starts a
# fresh attempt at once while requests still wait for a connection, and
# stops trying when none does (shop/db_backend/base.py).
DATABASE_POOL_RECONNECT_TIMEOUT = 2
# DATABASE_POOL_ENABLED=0 leaves every alias unpooled, a connection opened
# and closed per request, whatever the sizes above: the other side of the
# HTTP benchmark's pooled-against-unpooled comparison (bench/http.py).
DATABASE_POOL_ENABLED = env_bool("DATABASE_POOL_ENABLED", True)


def database(url, *, pool=None):
    """One alias's settings; `pool` (psycopg_pool's options) makes it pooled.

    A pooled alias checks every connection before handing it out, so one
    that a server restart or failover has killed is replaced instead of
    failing a request. CONN_HEALTH_CHECKS turns the pool's check on (Django
    then passes check=ConnectionPool.check_connection, so no pool option can
    carry a check of its own), and the shop.db_backend engine makes the
    first failed check sweep the whole pool: Django's check alone backs off
    for seconds between dead connections (shop/db_backend/base.py). While
    the server refuses connections (a restart's gap, an outage), the pool
    retries about once a second for as long as requests wait, so it serves
    again within a second of the server's return (DATABASE_POOL_* above).
    Unpooled aliases open a connection per request and close it after it
    (CONN_MAX_AGE = 0), so a restart costs them nothing.
    """
    config = dj_database_url.parse(url, conn_max_age=0, conn_health_checks=True)
    config["OPTIONS"] = {"sslmode": DB_SSLMODE, "connect_timeout": 5}
    if DB_SSLROOTCERT:
        config["OPTIONS"]["sslrootcert"] = DB_SSLROOTCERT
    if pool and DATABASE_POOL_ENABLED:
        config["OPTIONS"]["pool"] = {
            "timeout": DATABASE_POOL_TIMEOUT,
            "reconnect_timeout": DATABASE_POOL_RECONNECT_TIMEOUT,
            **pool,
        }
        config["ENGINE"] = "shop.db_backend"
    if SHOP_DATABASE:
        config["NAME"] = SHOP_DATABASE
    return config


def databases(pool):
    """Every alias; `pool` sizes the pools of those the app uses (None: none).

    `default` carries every request and task. `replica` and `readonly` get
    pools of the same size with a short timeout, and refused_fast: a pool
    whose server is down keeps reconnecting in the background while callers
    wait up to its `timeout`, whereas a stopped replica must cost
    milliseconds, so that its readers fall back to the primary and /healthz
    answers at once (shop/db_backend/base.py). `readonly` serves staff
    reports only, so it keeps no idle connection. `owner` and `loader` stay
    unpooled: migrations, the seed and labs open one connection and then
    the process ends, and a pool would only keep it open, which also keeps
    a scratch or test database from being dropped. `monitor` is unpooled
    too: a staff look at the top statements opens one connection and closes
    it (shop/observability/selectors.py), so it is one of the reserve's
    connections (DATABASE_RESERVED_CONNECTIONS), not a pool's.
    """
    replica_pool = pool and {
        **pool,
        "timeout": DATABASE_REPLICA_POOL_TIMEOUT,
        "refused_fast": True,
    }
    default = database(DATABASE_URL, pool=pool)
    if DATABASE_VIA_PGBOUNCER:
        default = through_pgbouncer(default)
    return {
        "default": default,
        "owner": database(OWNER_DATABASE_URL),
        "replica": database(REPLICA_DATABASE_URL, pool=replica_pool),
        "readonly": database(
            READONLY_DATABASE_URL, pool=replica_pool and {**replica_pool, "min_size": 0}
        ),
        "loader": database(LOADER_DATABASE_URL),
        "monitor": database(MONITOR_DATABASE_URL),
    }


# pgbouncer (chapter 16) in transaction mode in front of the primary
# (scripts/services.sh starts it). DATABASE_VIA_PGBOUNCER=1 sends `default`
# through it, under the same role, password and database name; the other
# aliases keep connecting directly: `owner` and `loader` need a session of
# their own (migrations, the seed's COPY), and pgbouncer would hide a
# stopped replica behind a listener that still accepts connections.
DATABASE_VIA_PGBOUNCER = env_bool("DATABASE_VIA_PGBOUNCER", False)
PGBOUNCER_HOST = env("PGBOUNCER_HOST", "127.0.0.1")
PGBOUNCER_PORT = int(env("PGBOUNCER_PORT", "56432"))
# Its default_pool_size and max_client_conn, as scripts/services.sh sets them
# (SHOP_PGBOUNCER_POOL_SIZE, SHOP_PGBOUNCER_MAX_CLIENT_CONN): the budget below.
PGBOUNCER_POOL_SIZE = int(env("PGBOUNCER_POOL_SIZE", "30"))
PGBOUNCER_MAX_CLIENT_CONN = int(env("PGBOUNCER_MAX_CLIENT_CONN", "200"))
# Its admin console (SHOW, KILL): the test suite's teardown and the labs.
PGBOUNCER_ADMIN_USER = env("PGBOUNCER_ADMIN_USER", "shop_pgbouncer")
PGBOUNCER_ADMIN_PASSWORD = env("PGBOUNCER_ADMIN_PASSWORD", "shop_pgbouncer")


def through_pgbouncer(config):
    """`config` connecting through pgbouncer, without what transaction mode breaks.

    A server connection serves one transaction, then another client, so
    nothing may outlive a transaction (tests/shop/test_pgbouncer.py shows
    each case): a server-side cursor of Django's iterator() is declared WITH
    HOLD and fetched in later transactions, maybe on another server
    connection, and a prepared statement is prepared on one server
    connection only (pgbouncer 1.18, Debian bookworm's, cannot track them;
    Django already prepares none: prepare_threshold None). Session-level SET
    leaks to the next client: the app sets its context with
    set_config(..., true), transaction-local (shop/db_context.py).
    """
    config = {**config, "HOST": PGBOUNCER_HOST, "PORT": str(PGBOUNCER_PORT)}
    config["OPTIONS"] = {**config["OPTIONS"], "prepare_threshold": None}
    config["DISABLE_SERVER_SIDE_CURSORS"] = True
    return config


def connection_budget(databases, *, threads, processes, via_pgbouncer=None):
    """Connections each server and pgbouncer must accept; refuse too many.

    The formula is the comment above DATABASE_THREADS. An unpooled alias
    counts one connection per thread. `via_pgbouncer`: whether `default`
    goes through pgbouncer, DATABASE_VIA_PGBOUNCER unless given.
    """
    if via_pgbouncer is None:
        via_pgbouncer = DATABASE_VIA_PGBOUNCER

    def most(alias):
        pool = databases[alias]["OPTIONS"].get("pool")
        return pool["max_size"] if pool else threads

    available = DATABASE_MAX_CONNECTIONS - DATABASE_RESERVED_CONNECTIONS
    app = processes * (most("default") + threads)
    budget = {"replica": (processes * (most("replica") + most("readonly")), available)}
    if via_pgbouncer:
        budget["primary"] = (PGBOUNCER_POOL_SIZE, available)
        budget["pgbouncer"] = (app, PGBOUNCER_MAX_CLIENT_CONN)
    else:
        budget["primary"] = (app, available)
    for server, (needed, limit) in budget.items():
        if needed > limit:
            raise ImproperlyConfigured(
                f"The connection pools may open {needed} connections to "
                f"{server}, which accepts {limit} (shop/settings/base.py, the "
                "formula above DATABASE_THREADS). Lower DATABASE_THREADS or "
                "DATABASE_PROCESSES, or raise the server's limit and "
                "DATABASE_MAX_CONNECTIONS, PGBOUNCER_POOL_SIZE or "
                "PGBOUNCER_MAX_CLIENT_CONN with it."
            )
    return {server: needed for server, (needed, _) in budget.items()}


DATABASES = databases(DATABASE_POOL)
connection_budget(DATABASES, threads=DATABASE_THREADS, processes=DATABASE_PROCESSES)
DATABASE_ROUTERS = [
    "shop.db_routers.ReadReplicaRouter",
    "shop.db_routers.OwnerMigratesRouter",
]

# --- The read-replica router (shop/replica.py, chapter 18) -----------------
# Anonymous catalog reads go to the replica (shop/middleware.py:
# ReadReplicaMiddleware); REPLICA_READS=0 sends every read to the primary.
REPLICA_READS = env_bool("REPLICA_READS", True)
# The URL names whose anonymous GETs may read the replica: the public
# catalog. Stock (staff only) and everything a customer owns stay off it.
REPLICA_READ_ROUTES = ("category-tree", "product-list", "product-detail")
# Replay delay measured on this machine (2 shared cores, the local primary
# and its streaming replica, asynchronous replication), from a commit's
# return on the primary until its row is visible on the replica, in two
# runs, the second beside other test suites (load average 5): 400 one-row
# commits p50 0.6 ms, p99 8-9 ms, max 9-60 ms; 200 commits of 1,000 rows
# (about 230 kB of WAL each) p50 3-4 ms, p99 16-60 ms, max 28-115 ms.
# `manage.py lab replica` measures it again. A replica more than a second
# behind is therefore not busy but in trouble (replay paused or in
# conflict, its WAL receiver gone): its reads go to the primary until it
# catches up.
REPLICA_MAX_LAG_SECONDS = float(env("REPLICA_MAX_LAG_SECONDS", "1"))
# How often each process measures the lag (one query to each server, in a
# thread of its own). A verdict serves requests for up to twice this long.
REPLICA_CHECK_SECONDS = float(env("REPLICA_CHECK_SECONDS", "1"))
# How long a client that has written reads from the primary. The replica
# serves reads while a verdict at most 2 x REPLICA_CHECK_SECONDS old said it
# lagged less than REPLICA_MAX_LAG_SECONDS, so a read made this long after a
# write finds the write there even at the worst lag the router accepts,
# 1 + 2 x 1 = 3 s: 26 times the slowest replay measured above.
READ_YOUR_WRITES_SECONDS = float(
    env(
        "READ_YOUR_WRITES_SECONDS",
        str(REPLICA_MAX_LAG_SECONDS + 2 * REPLICA_CHECK_SECONDS),
    )
)
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_USER_MODEL = "accounts.User"
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": f"django.contrib.auth.password_validation.{name}"}
    for name in (
        "UserAttributeSimilarityValidator",
        "MinimumLengthValidator",
        "CommonPasswordValidator",
        "NumericPasswordValidator",
    )
]

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True
STATIC_URL = "static/"
STATIC_ROOT = BASE_DIR / "var" / "static"

# --- Redis: cache and Celery broker ----------------------------------------
# Redis is configured or not, and that is all the settings decide: whether it
# answers is a run-time matter (shop/cache.py, /healthz), never frozen at
# import. With REDIS_URL set (redis:// or rediss://) the cache is always
# Redis; when Redis stops answering, each cache call fails within
# REDIS_TIMEOUT and its caller degrades (catalog reads come from the
# database; the auth rate limits answer 503). REDIS_URL set to the empty
# string runs without Redis: a local-memory cache in each process and Celery
# tasks run inside the request, for a machine without Redis only.
REDIS_URL = env("REDIS_URL", "redis://127.0.0.1:6379/0")
REDIS_ENABLED = bool(REDIS_URL)
# Seconds to connect to Redis and to wait for each answer. A stopped Redis
# refuses at once; this bounds what an unreachable one (a host gone, packets
# dropped) costs a request, instead of the system's TCP timeout.
REDIS_TIMEOUT = float(env("REDIS_TIMEOUT", "0.5"))
# The catalog cache (catalog/cache/): the category tree, the product list's
# pages and product details served from Redis, when the cache is Redis.
# CATALOG_CACHE=0 reads them from the database every time; writes still
# retire their entries, so another process with the cache on never serves
# one that is stale.
CATALOG_CACHE = env_bool("CATALOG_CACHE", True)


def redis_cache(url):
    """Django's cache on the Redis at `url`.

    Errors are not ignored (no IGNORE_EXCEPTIONS): a rate limit must know
    that it could not count, rather than read a failed call as "not seen".
    """
    return {
        "BACKEND": "django_redis.cache.RedisCache",
        "LOCATION": url,
        "KEY_PREFIX": "shop",
        "OPTIONS": {
            "CLIENT_CLASS": "django_redis.client.DefaultClient",
            "SOCKET_CONNECT_TIMEOUT": REDIS_TIMEOUT,
            "SOCKET_TIMEOUT": REDIS_TIMEOUT,
        },
    }


if REDIS_ENABLED:
    CACHES = {"default": redis_cache(REDIS_URL)}
else:
    log.warning(
        "REDIS_URL is empty: running without Redis, on a local-memory cache in "
        "each process (rate limits are counted per process) and with Celery "
        "tasks run inside requests. Start Redis (`scripts/services.sh up`) "
        "and unset REDIS_URL, or point it at your server, for the real thing."
    )
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}

# Without Redis there is no broker: tasks run eagerly, and "memory://" keeps
# Celery from falling back to its default broker, AMQP on localhost.
CELERY_BROKER_URL = env("CELERY_BROKER_URL", REDIS_URL or "memory://")
CELERY_RESULT_BACKEND = None
CELERY_TASK_ALWAYS_EAGER = not REDIS_ENABLED
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_BEAT_SCHEDULE = {
    "checkout-recover": {
        "task": "orders.tasks.checkout_recover_task",
        "schedule": 300.0,
    },
    "idempotency-key-purge": {
        "task": "orders.tasks.idempotency_key_purge_task",
        "schedule": 3600.0,
    },
    # The outbox's relay (analytics/relay.py): commits kick it at once
    # (shop/outbox.py); beat ships what a lost kick, the admin or psql left.
    "outbox-relay": {
        "task": "analytics.tasks.outbox_relay_task",
        "schedule": float(env("OUTBOX_RELAY_INTERVAL", "10")),
    },
    "outbox-purge": {
        "task": "analytics.tasks.outbox_purge_task",
        "schedule": 3600.0,
    },
    # Closed days of the daily-sales view (analytics/sql/views/): after
    # midnight, yesterday joins them; a late cancellation is picked up too.
    "daily-sales-refresh": {
        "task": "analytics.tasks.daily_sales_refresh_task",
        "schedule": float(env("DAILY_SALES_REFRESH_INTERVAL", "900")),
    },
    # The stock ledger's partitions (orders/partitions.py): months ahead made,
    # old months detached. Daily; a missed run only uses up a month of the
    # STOCK_LEDGER_MONTHS_AHEAD margin.
    "stock-ledger-partitions": {
        "task": "orders.tasks.stock_ledger_partitions_task",
        "schedule": 86400.0,
    },
    "product-views-flush": {
        "task": "analytics.tasks.product_views_flush_task",
        "schedule": float(env("VIEW_FLUSH_INTERVAL", "5")),
    },
}

# --- Payments: the fake gateway (orders/payments.py) ---------------------
# Seconds every gateway call takes; tests raise it to prove that checkout
# holds no row lock while it waits.
PAYMENT_GATEWAY_DELAY = float(env("PAYMENT_GATEWAY_DELAY", "0"))
# Recovery's questions to the gateway about unknown outcomes
# (orders/services/orders.py): at most this many orders a run, each asked
# again after a wait that starts here and doubles per question, up to the cap
# (seconds), so an outage of the gateway never becomes a flood of lookups.
CHECKOUT_RECOVER_ASK_BATCH = int(env("CHECKOUT_RECOVER_ASK_BATCH", "100"))
CHECKOUT_RECOVER_ASK_BACKOFF = float(env("CHECKOUT_RECOVER_ASK_BACKOFF", "60"))
CHECKOUT_RECOVER_ASK_BACKOFF_MAX = float(
    env("CHECKOUT_RECOVER_ASK_BACKOFF_MAX", str(6 * 3600))
)

# --- Idempotency keys (orders/services/idempotency.py) ----------------------
# Seconds a completed checkout key is kept (24 h): a retry within it gets the
# stored answer; after it, the beat task idempotency-key-purge has deleted
# the key and the same key is a new request.
IDEMPOTENCY_KEY_RETENTION = float(env("IDEMPOTENCY_KEY_RETENTION", "86400"))

# --- MongoDB: the event log's store (analytics/event_store.py) -------------
# Empty: no event store; events wait in the outbox and /healthz says so.
MONGO_URL = env("MONGO_URL", "")
MONGO_DB = env("MONGO_DB", "shop_events")
# How long the relay waits to find the server, and then for an answer: the
# batch's row locks are held meanwhile (analytics/relay.py).
MONGO_TIMEOUT_MS = int(env("MONGO_TIMEOUT_MS", "2000"))
MONGO_SOCKET_TIMEOUT_MS = int(env("MONGO_SOCKET_TIMEOUT_MS", "5000"))
# The server-side limit of a staff read of the event log (maxTimeMS), below
# the socket timeout: MongoDB stops the query rather than finishing it for
# a client that gave up (analytics/event_log.py).
MONGO_QUERY_TIMEOUT_MS = int(env("MONGO_QUERY_TIMEOUT_MS", "4000"))
# "majority": acknowledged by most of a replica set's members, so a failover
# cannot roll back what the relay marked shipped (a lone server: itself).
MONGO_WRITE_CONCERN = env("MONGO_WRITE_CONCERN", "majority")
# Raw product views expire from the event log after this (a TTL index).
EVENT_VIEW_TTL_SECONDS = int(env("EVENT_VIEW_TTL_SECONDS", str(90 * 86400)))

# --- The stock ledger's partitions (orders/partitions.py) ----------------------
# Months made ahead of today's: the margin a stopped task has before rows
# start landing in the default partition.
STOCK_LEDGER_MONTHS_AHEAD = int(env("STOCK_LEDGER_MONTHS_AHEAD", "3"))
# Months kept in the ledger (0: keep all; at least 12 otherwise, which the
# detaching function enforces); older ones are detached into the schema
# orders_archive. Five years: the seed's history (two years before
# its base time) stays, and so does a bookkeeping period of most countries.
STOCK_LEDGER_RETENTION_MONTHS = int(env("STOCK_LEDGER_RETENTION_MONTHS", "60"))
# How long making or detaching a partition may wait for checkout's locks.
STOCK_LEDGER_LOCK_TIMEOUT = env("STOCK_LEDGER_LOCK_TIMEOUT", "2s")

# --- The outbox (shop/models.py, analytics/relay.py) --------------------------
# Events per relay batch (one transaction, one bulk write), and batches per
# run; the next run (a kick, or beat) goes on where it stopped.
OUTBOX_RELAY_BATCH = int(env("OUTBOX_RELAY_BATCH", "500"))
OUTBOX_RELAY_MAX_BATCHES = int(env("OUTBOX_RELAY_MAX_BATCHES", "20"))
# Shipped events stay this long in the outbox (7 days), then the purge
# deletes them, OUTBOX_PURGE_BATCH at a time.
OUTBOX_RETENTION_SECONDS = float(env("OUTBOX_RETENTION_SECONDS", str(7 * 86400)))
OUTBOX_PURGE_BATCH = int(env("OUTBOX_PURGE_BATCH", "5000"))
# Product views (catalog/views_buffer.py): the Redis buffer keeps at most
# this many (the newest) if the flush stops; the flush moves this many per
# batch into the outbox, every VIEW_FLUSH_INTERVAL seconds.
VIEW_BUFFER_MAX = int(env("VIEW_BUFFER_MAX", "1000000"))
VIEW_FLUSH_BATCH = int(env("VIEW_FLUSH_BATCH", "1000"))

# --- Rate limits (shop/accounts/api/throttling.py) ---------------------------
# Attempts per window on the auth endpoints, "N/s", "N/min", "N/hour" or
# "N/day", counted in the default cache: Redis, shared by every web process.
AUTH_RATE_REGISTER = env("AUTH_RATE_REGISTER", "10/hour")  # per client IP
AUTH_RATE_TOKEN = env("AUTH_RATE_TOKEN", "10/min")  # per client IP
AUTH_RATE_TOKEN_EMAIL = env("AUTH_RATE_TOKEN_EMAIL", "5/min")  # per e-mail tried
# Reverse proxies in front of the app that append the client's address to
# X-Forwarded-For. 0 trusts REMOTE_ADDR alone: otherwise any client could
# name a fresh address in the header on every request and never be limited.
NUM_PROXIES = int(env("NUM_PROXIES", "0"))

# --- Column encryption at rest (shop/crypto.py) ------------------------------
# Comma-separated id:secret pairs, the current key first ("2:new,1:old"); see
# `rotate_field_keys` for rotation. The default is for local use and tests
# only: production.py refuses to start without the variable.
FIELD_ENCRYPTION_KEYS = env("FIELD_ENCRYPTION_KEYS", "1:dev-only-insecure-field-key")

# --- REST framework -------------------------------------------------------
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "shop.accounts.authentication.StrictTokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.AllowAny"],
    "DEFAULT_RENDERER_CLASSES": [
        "rest_framework.renderers.JSONRenderer",
        "rest_framework.renderers.BrowsableAPIRenderer",
    ],
    # DRF's JSON parser with a nesting bound (deep JSON was a 500).
    "DEFAULT_PARSER_CLASSES": ["shop.parsers.JSONParser"],
    "DEFAULT_SCHEMA_CLASS": "shop.openapi.ShopAutoSchema",
    "EXCEPTION_HANDLER": "shop.errors.api_exception_handler",
    "COERCE_DECIMAL_TO_STRING": True,
    # Client IPs for the rate limits (see "Rate limits" above).
    "NUM_PROXIES": NUM_PROXIES,
}
SPECTACULAR_SETTINGS = {
    "TITLE": "The shop API",
    "DESCRIPTION": "A reference e-commerce backend and a course on databases.",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "COMPONENT_SPLIT_REQUEST": True,
    # The docs pages load their scripts and styles from this app's static
    # files (drf-spectacular-sidecar), not from a CDN: they render offline,
    # and the version is the one requirements.txt pins, not npm's @latest.
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
}

# --- Logs (shop/observability/logs.py) --------------------------------------
# One line per record on stderr, each with the id of the request it belongs
# to (X-Request-ID; a Celery task carries the id of the request that
# enqueued it) and its user. LOG_FORMAT=json (the default) writes one JSON
# object per line, what a log shipper reads wherever the shop is deployed;
# LOG_FORMAT=text writes the same for a person at a terminal. Every request
# adds one line from the logger shop.access: method, path, status,
# duration_ms, and sql_count and sql_ms, its statements on every alias.
LOG_FORMAT = env("LOG_FORMAT", "json")
if LOG_FORMAT not in {"json", "text"}:
    raise ImproperlyConfigured(f"LOG_FORMAT is {LOG_FORMAT!r}: use json or text.")
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {
        "request_context": {
            "()": "shop.observability.logs.RequestContextFilter",
        },
    },
    "formatters": {
        "json": {"()": "shop.observability.logs.JsonFormatter"},
        "text": {"()": "shop.observability.logs.TextFormatter"},
    },
    "handlers": {
        "console": {
            "class": "logging.StreamHandler",
            "formatter": LOG_FORMAT,
            "filters": ["request_context"],
        }
    },
    "root": {"handlers": ["console"], "level": env("LOG_LEVEL", "INFO")},
    "loggers": {
        "django.db.backends": {"level": "INFO"},
        # Alembic (the chapter 16 lab) logs each plugin it loads, at import.
        "alembic.runtime.plugins": {"level": "WARNING"},
    },
}
# The worker keeps the logging above instead of installing its own handler
# and format on the root logger, so its lines are the same JSON, request id
# included (shop/observability/task_context.py).
CELERY_WORKER_HIJACK_ROOT_LOGGER = False
