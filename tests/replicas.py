"""The streaming replica in tests: its superuser, paused replay, queries per alias.

The project's clusters (scripts/services.sh) trust local connections over
their Unix socket, and the tests run as root on the machine that runs them,
so a test may act as the cluster's superuser there, e.g. to pause the
standby's WAL replay. Nowhere else: over TCP every role needs its password,
and the app's roles may not pause anything.
"""

import time
import uuid
from contextlib import ExitStack, contextmanager
from decimal import Decimal

import dj_database_url
import pytest
from django.conf import settings
from django.db import connections

from shop import replica
from shop.local_clusters import socket_dir
from shop.local_clusters import superuser as cluster_superuser
from tests.catalog.factories import (
    CategoryFactory,
    ProductFactory,
    StockLevelFactory,
    VariantFactory,
)
from tests.dbs import wait_for_replica

# The suite's cache (shop/settings/test.py), before any test replaces it.
SUITE_CACHES = settings.CACHES


def replica_port() -> int:
    """The real standby's port, whatever a test has pointed the aliases at."""
    return int(dj_database_url.parse(settings.REPLICA_DATABASE_URL)["PORT"])


@contextmanager
def superuser(port: int):
    """The cluster superuser on the server at `port`, over its Unix socket."""
    sock = socket_dir() / f".s.PGSQL.{port}"
    if not sock.exists():
        pytest.skip(
            f"no cluster socket at {sock}: this test needs the project's own "
            "servers (scripts/services.sh up) on this machine"
        )
    with cluster_superuser(port) as connection:
        yield connection


def _resume_replay() -> None:
    with superuser(replica_port()) as connection:
        connection.execute("SELECT pg_wal_replay_resume()")


@contextmanager
def replay_paused(timeout: float = 5.0):
    """Pause the standby's WAL replay for the block, and always resume it.

    The standby is shared by every test run on the machine: keep the block
    short (tests/dbs.py's wait_for_replica gives up after 10 s). The resume
    runs on a connection of its own, so a broken one cannot leave replay
    paused.
    """
    with superuser(replica_port()) as connection:
        connection.execute("SELECT pg_wal_replay_pause()")
    try:
        # The pause is a request; replay stops at the next record.
        deadline = time.monotonic() + timeout
        with superuser(replica_port()) as connection:
            while True:
                (state,) = connection.execute(
                    "SELECT pg_get_wal_replay_pause_state()"
                ).fetchone()
                if state == "paused":
                    break
                if time.monotonic() > deadline:
                    raise TimeoutError(f"replay still {state!r} after {timeout}s")
                time.sleep(0.01)
        yield
    finally:
        _resume_replay()


@contextmanager
def queries_by_alias(*aliases: str):
    """{alias: [sql, ...]}: every statement this thread runs on each alias.

    Every alias of settings.DATABASES unless some are named. Unlike
    CaptureQueriesContext, it does not connect the aliases it watches, so
    it can watch one whose server is down.
    """
    captured = {alias: [] for alias in aliases or connections}

    def recorder(queries):
        def record(execute, sql, params, many, context):
            queries.append(sql)
            return execute(sql, params, many, context)

        return record

    with ExitStack() as stack:
        for alias, queries in captured.items():
            stack.enter_context(connections[alias].execute_wrapper(recorder(queries)))
        yield captured


# Transactional tests that read the replica list it and `readonly`, and
# `owner` so that Django flushes the rows they commit (tests/dbs.py).
REPLICA_DATABASES = ["default", "owner", "replica", "readonly"]


@contextmanager
def replica_reads_on(settings):
    """Replica reads on, every read from the database, and no verdict yet.

    `settings` is pytest-django's fixture. The cache is a local-memory one
    of this test's own: the catalog cache stays off (catalog/cache/store.py),
    so every catalog request reads the database, where its routing shows;
    and read-your-writes markers are this test's alone, where the suite's
    Redis database is shared by every test run on the machine. The tests of
    the markers in Redis itself ask for suite_redis_cache().
    """
    settings.REPLICA_READS = True
    settings.CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.locmem.LocMemCache",
            "LOCATION": f"test-router-{uuid.uuid4().hex}",
        }
    }
    replica.replica_forget()
    replica.markers_forget()
    try:
        yield settings
    finally:
        replica.replica_forget()
        replica.markers_forget()


def suite_redis_cache() -> dict:
    """The suite's Redis as the cache, under a key prefix of this test's own."""
    if not settings.REDIS_ENABLED:
        pytest.skip("REDIS_URL is empty: no Redis to keep the markers in")
    return {
        "default": {
            **SUITE_CACHES["default"],
            "KEY_PREFIX": f"test-router-{uuid.uuid4().hex}",
        }
    }


def replica_ready(timeout=5.0):
    """The replica has every committed row, and this process knows it is usable.

    A probe may find it a few bytes behind (WAL that is not a commit, or
    another test run's) just after a quiet second, and judge it by the age
    of its last replayed commit: such a verdict is asked again.
    """
    deadline = time.monotonic() + timeout
    while True:
        wait_for_replica()
        replica.replica_forget()
        status = replica.replica_status(wait=True)
        if status.usable:
            return
        assert time.monotonic() < deadline, status


def make_catalog(products=12):
    """Listed products "Lamp <i>" (slug lamp-<i>) in `lamps`, which has a child."""
    category = CategoryFactory(slug="lamps")
    CategoryFactory(slug="desk-lamps", parent=category)
    for i in range(products):
        product = ProductFactory(name=f"Lamp {i}", slug=f"lamp-{i}", category=category)
        variant = VariantFactory(product=product, price=Decimal("10.00"))
        StockLevelFactory(variant=variant)
    return category


def ran(queries):
    """{alias: statements} of the aliases that ran any, from queries_by_alias()."""
    return {alias: len(sql) for alias, sql in queries.items() if sql}
