"""Pooled connections survive what a server restart does to them.

A restart (`pg_ctl restart -m fast`) or a failover ends the server process
behind every connection the app holds. The idle ones in the pool do not
notice until they are used, so a pool that hands them out unchecked fails
one request per dead connection. The pool of `default` checks each
connection before handing it out, and sweeps the whole pool at the first
dead one (shop/settings/base.py: database(), shop/db_backend/base.py).

A restart also refuses connections for a while, from the old server's
exit to the new one's start. The outage tests put a forwarder of their own
between the pool and the primary (tests/shop/forwarder.py), cut it for a
few seconds while shoppers keep reading, and measure what they got. Before
the pool's reconnection was tuned (shop/settings/base.py:
DATABASE_POOL_RECONNECT_TIMEOUT), psycopg_pool's backoff (1, 2, 4, 8 s...)
failed every request made during an 8 s outage, and after a 20 s one it
served again only 8 s after the primary's return; now both serve within
a fraction of a second of it.

The requests go through a live server, so each one borrows a connection
from the pool and returns it when it ends, exactly as under runserver or
gunicorn; the test client would keep one connection for the whole test.
"""

import json
import os
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from dataclasses import dataclass

import psycopg
import pytest
from django.db import DatabaseError, connections
from rest_framework.authtoken.models import Token

from shop.settings import base
from tests.accounts.factories import CustomerFactory
from tests.catalog.factories import ProductFactory
from tests.dbs import ALL_DATABASES
from tests.shop.forwarder import Forwarder
from tests.shop.test_settings import ENVIRONMENTS, ROOT, SECRETS, settings_of

pytestmark = pytest.mark.django_db(transaction=True, databases=ALL_DATABASES)

# Idle connections in the pool at the moment of the restart: what a warm
# development server's threads leave behind.
WARM = 8
REQUESTS = 10


def warm_the_pool(count=WARM):
    """Leave `count` idle connections in the pool of `default`."""
    connections["default"].close()  # the test's own goes back to the pool too
    pool = connections["default"].pool
    pool.open()
    held = [pool.getconn() for _ in range(count)]
    for conn in held:
        pool.putconn(conn)
    return pool


def terminate_app_backends():
    """End every server process of the app's role on the test database.

    What a restart does to them, but only on this test's database: other
    runs on the same server are left alone. The connection that does it is
    shop_app's own and unpooled; shop_owner may not signal another role's
    processes (that takes membership of the role or pg_signal_backend).
    """
    params = connections["default"].get_connection_params()
    with psycopg.connect(**params, autocommit=True) as admin:
        (ended,) = admin.execute(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
            "WHERE usename = current_user AND datname = current_database() "
            "AND pid <> pg_backend_pid()"
        ).fetchone()
    return ended


def get(url, token=None):
    request = urllib.request.Request(url)
    if token:
        request.add_header("Authorization", f"Token {token}")
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


@pytest.fixture
def api(live_server):
    """Two routes a shopper uses: a catalog read and, with a token, the cart."""
    ProductFactory()
    token = Token.objects.create(user=CustomerFactory().user).key
    paths = [
        (f"{live_server.url}/api/v1/products/", None),
        (f"{live_server.url}/api/v1/cart/", token),
    ]
    for url, auth in paths:
        assert get(url, auth)[0] == 200
    return [paths[i % len(paths)] for i in range(REQUESTS)]


def statuses_after_a_restart(api):
    pool = warm_the_pool()
    lost_before = pool.get_stats().get("connections_lost", 0)
    assert terminate_app_backends() >= WARM
    started = time.monotonic()
    statuses = [get(url, auth)[0] for url, auth in api]
    elapsed = time.monotonic() - started
    lost = pool.get_stats().get("connections_lost", 0) - lost_before
    return statuses, lost, elapsed


def test_after_a_restart_no_request_fails(api):
    statuses, lost, elapsed = statuses_after_a_restart(api)

    assert statuses == [200] * REQUESTS
    # The pool met the dead connections and replaced them itself, without
    # waiting between them: with Django's check alone the first request
    # spent 13 s on eight dead connections and then failed (a 503).
    assert lost >= WARM
    assert elapsed < 3, f"{REQUESTS} requests took {elapsed:.2f}s"


@pytest.fixture
def unchecked_pool():
    """The pool of `default` as Django builds it without CONN_HEALTH_CHECKS."""
    connection = connections["default"]
    connection.close()
    connection.close_pool()
    connection.settings_dict["CONN_HEALTH_CHECKS"] = False
    try:
        yield
    finally:
        connection.close()
        connection.close_pool()
        connection.settings_dict["CONN_HEALTH_CHECKS"] = True


def test_without_the_check_the_same_restart_fails_requests(unchecked_pool, api):
    """The control: the scenario above really breaks an unchecked pool.

    Each dead connection fails the request that gets it (8 of the 10 here,
    one per connection killed), as the pool of local.py and production.py
    did before it was checked.
    """
    statuses, _, _ = statuses_after_a_restart(api)

    assert 503 in statuses


# --- A server that refuses connections for a while ---------------------------
# A restart is not only dead connections: between the old server's exit and
# the new one's start, every connect is refused. The pool then keeps trying
# in the background while requests wait for it, up to its `timeout`.

SHOPPERS = 4


@dataclass(frozen=True)
class Answer:
    start: float
    end: float
    status: int

    @property
    def took(self) -> float:
        return self.end - self.start


@dataclass
class Timeline:
    """What the shoppers got around one outage, on the monotonic clock."""

    answers: list[Answer]
    cut: float
    restored: float

    def during(self) -> list[Answer]:
        return [a for a in self.answers if self.cut <= a.start < self.restored]

    def after(self) -> list[Answer]:
        return [a for a in self.answers if a.start >= self.restored]

    def serving_again(self) -> float:
        """Seconds from the return to the first request answered 200."""
        ends = [a.end for a in self.during() + self.after() if a.status == 200]
        return min(ends) - self.restored

    def summary(self) -> str:
        def line(answers):
            ok = sum(a.status == 200 for a in answers)
            slowest = max((a.took for a in answers), default=0)
            return (
                f"{len(answers)} requests, {ok} answered 200, "
                f"{len(answers) - ok} not, slowest {slowest:.2f}s"
            )

        return (
            f"outage of {self.restored - self.cut:.1f}s: during it "
            f"{line(self.during())}; after it {line(self.after())}; "
            f"serving again {self.serving_again():.2f}s after the return"
        )


class Shoppers:
    """Threads that read the catalog one request after another, for a while."""

    def __init__(self, url, count=SHOPPERS, pause=0.2):
        self.url = url
        self.pause = pause
        self.answers: list[Answer] = []
        self._stop = threading.Event()
        self._threads = [threading.Thread(target=self._shop) for _ in range(count)]

    def _shop(self):
        while not self._stop.is_set():
            start = time.monotonic()
            try:
                status = get(self.url)[0]
            except OSError:  # the live server itself never fails like this
                status = 0
            self.answers.append(Answer(start, time.monotonic(), status))
            self._stop.wait(self.pause)

    def __enter__(self):
        for thread in self._threads:
            thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        for thread in self._threads:
            thread.join()


@pytest.fixture
def forwarded_default():
    """The pool of `default` built afresh, through a forwarder to the primary.

    Only PORT changes: NAME is already the test database's, which
    setup_databases wrote into `default` as a mirror of `owner`. The port
    changes before the pool is closed, and back before it is closed again:
    a live server thread that finishes a request builds a new pool as soon
    as there is none, from whatever the settings say at that moment.
    """
    default = connections["default"]
    port = default.settings_dict["PORT"]
    forwarder = Forwarder(default.settings_dict["HOST"], port)
    forwarder.open()
    default.close()
    default.settings_dict["PORT"] = str(forwarder.port)
    default.close_pool()
    try:
        yield forwarder
    finally:
        default.close()
        default.settings_dict["PORT"] = port
        default.close_pool()
        forwarder.close()


def pool_timeout() -> float:
    return connections["default"].settings_dict["OPTIONS"]["pool"]["timeout"]


def an_outage(forwarder, url, seconds, *, after=4.0) -> Timeline:
    """Cut the primary off for `seconds` while shoppers keep reading."""
    warm_the_pool()
    assert forwarder.connections() >= WARM  # the pool's, through the forwarder
    with Shoppers(url) as shoppers:
        time.sleep(1)
        # A request that started before cut() returned may have finished on
        # its connection, or lost it mid-way: neither is "during" the outage.
        forwarder.cut()
        cut = time.monotonic()
        time.sleep(seconds)
        forwarder.restore()
        restored = time.monotonic()
        time.sleep(after)
    timeline = Timeline(shoppers.answers, cut, restored)
    print(timeline.summary())
    return timeline


@pytest.mark.slow
@pytest.mark.parametrize("seconds", [2, 8])
def test_requests_during_an_outage_shorter_than_the_pool_timeout_wait_and_succeed(
    forwarded_default, api, seconds
):
    products = api[0][0]
    assert seconds < pool_timeout() - 1.5

    timeline = an_outage(forwarded_default, products, seconds)

    assert timeline.during() and timeline.after()
    failed = [a for a in timeline.during() + timeline.after() if a.status != 200]
    assert not failed, timeline.summary()
    assert timeline.serving_again() < 1.5, timeline.summary()
    assert max(a.took for a in timeline.after()) < 1.5, timeline.summary()


@pytest.mark.slow
def test_after_a_long_outage_the_shop_serves_within_seconds_of_the_return(
    forwarded_default, api
):
    """Longer than the pool timeout: requests that gave up early got a 503.

    Everything else must succeed: a request made after the return, or one
    still waiting then with time left, is answered within about a second.
    psycopg_pool's reconnection alone backs off 1, 2, 4, 8, 16 s between
    attempts, so it could first try again long after the server was back.
    """
    products = api[0][0]
    timeline = an_outage(forwarded_default, products, 20)

    assert {a.status for a in timeline.answers} <= {200, 503}, timeline.summary()
    waiting = [
        a
        for a in timeline.during()
        if a.start > timeline.restored - (pool_timeout() - 2)
    ]
    for answer in waiting + timeline.after():
        assert answer.status == 200, timeline.summary()
        assert answer.end < max(answer.start, timeline.restored) + 2, timeline.summary()
    assert timeline.serving_again() < 1.5, timeline.summary()


def test_the_pool_of_default_connects_to_the_test_database():
    """`default` mirrors `owner`; its pool must not predate the mirroring."""
    test_database = connections["owner"].settings_dict["NAME"]
    assert connections["default"].settings_dict["NAME"] == test_database
    assert connections["default"].pool.kwargs["dbname"] == test_database
    with connections["default"].cursor() as cursor:
        cursor.execute("SELECT current_database()")
        assert cursor.fetchone() == (test_database,)


@pytest.mark.parametrize("module", ENVIRONMENTS)
def test_every_environment_retries_a_refusing_primary_about_once_a_second(module):
    """Its sizes are its own; the rest of the pool is base.py's, everywhere."""
    pool = settings_of(module)[0]["DATABASES"]["default"]["OPTIONS"]["pool"]

    assert pool["reconnect_timeout"] == base.DATABASE_POOL_RECONNECT_TIMEOUT <= 2
    assert pool["timeout"] == base.DATABASE_POOL_TIMEOUT


# --- Sizes: every alias the app uses is pooled, by one formula ----------------

SIZES_DUMP = """
import importlib, json, sys
s = importlib.import_module(sys.argv[1])
print(json.dumps({
    "threads": s.DATABASE_THREADS,
    "processes": s.DATABASE_PROCESSES,
    "pools": {a: c["OPTIONS"].get("pool") for a, c in s.DATABASES.items()},
    "budget": s.connection_budget(
        s.DATABASES, threads=s.DATABASE_THREADS, processes=s.DATABASE_PROCESSES
    ),
    "available": s.DATABASE_MAX_CONNECTIONS - s.DATABASE_RESERVED_CONNECTIONS,
}))
"""


def sizes_of(module, **env) -> subprocess.CompletedProcess:
    """The pool settings of `module`, imported in a fresh interpreter."""
    environment = {
        k: v
        for k, v in os.environ.items()
        if k not in {"DJANGO_SETTINGS_MODULE", "DATABASE_VIA_PGBOUNCER"}
    }
    return subprocess.run(
        [sys.executable, "-c", SIZES_DUMP, module],
        cwd=ROOT,
        env={**environment, **SECRETS, **env},
        capture_output=True,
        text=True,
        timeout=60,
    )


@pytest.mark.parametrize("module", ENVIRONMENTS)
def test_every_environment_sizes_every_pool_by_the_formula(module):
    done = sizes_of(module)
    assert done.returncode == 0, done.stderr
    found = json.loads(done.stdout.splitlines()[-1])
    threads, processes = found["threads"], found["processes"]
    pools = found["pools"]

    # The aliases of the web app and the workers; migrations and the seed
    # open one connection and end (base.py: databases()).
    assert {alias for alias, pool in pools.items() if pool} == {
        "default",
        "replica",
        "readonly",
    }
    for alias in ("default", "replica", "readonly"):
        assert pools[alias]["max_size"] == threads + max(2, threads // 4), alias
    # Everything every process may open fits in what the servers accept.
    assert found["budget"]["primary"] == processes * (
        pools["default"]["max_size"] + threads
    )
    assert found["budget"]["replica"] == processes * (
        pools["replica"]["max_size"] + pools["readonly"]["max_size"]
    )
    assert max(found["budget"].values()) <= found["available"]


def test_settings_whose_pools_the_servers_cannot_take_refuse_to_start():
    done = sizes_of(
        "shop.settings.production", DATABASE_THREADS="64", DATABASE_PROCESSES="8"
    )

    assert done.returncode != 0
    assert "ImproperlyConfigured" in done.stderr
    assert "Lower DATABASE_THREADS or DATABASE_PROCESSES" in done.stderr


@pytest.mark.parametrize("module", ENVIRONMENTS)
def test_the_replica_pools_give_up_fast_and_the_primarys_waits(module):
    pools = settings_of(module)[0]["DATABASES"]

    default = pools["default"]["OPTIONS"]["pool"]
    assert default["timeout"] == base.DATABASE_POOL_TIMEOUT
    assert not default.get("refused_fast")
    for alias in ("replica", "readonly"):
        pool = pools[alias]["OPTIONS"]["pool"]
        assert pool["timeout"] == base.DATABASE_REPLICA_POOL_TIMEOUT <= 1, alias
        assert pool["refused_fast"] is True, alias
    # Staff reports only: no idle connection kept for them.
    assert pools["readonly"]["OPTIONS"]["pool"]["min_size"] == 0


# --- A stopped replica costs a request milliseconds, pooled as it is ----------


@pytest.fixture
def forwarded_replica():
    """The pool of `replica` through a forwarder to the real standby.

    Changing PORT is enough: the pool is built again for the new port the
    next time it is asked for (shop/db_backend/base.py), and once more when
    the port changes back.
    """
    replica = connections["replica"]
    port = replica.settings_dict["PORT"]
    forwarder = Forwarder(replica.settings_dict["HOST"], port)
    forwarder.open()
    replica.close()
    replica.settings_dict["PORT"] = str(forwarder.port)
    try:
        yield forwarder
    finally:
        replica.close()
        replica.settings_dict["PORT"] = port
        replica.close_pool()
        forwarder.close()


def replica_read() -> tuple[Exception | None, float]:
    """One read on `replica` as a request makes it: (its error, seconds)."""
    replica = connections["replica"]
    started = time.monotonic()
    error = None
    try:
        with replica.cursor() as cursor:
            cursor.execute("SELECT pg_is_in_recovery()")
            assert cursor.fetchone() == (True,)
    except DatabaseError as exc:
        error = exc
    finally:
        replica.close()  # back to the pool, as at the end of a request
    return error, time.monotonic() - started


def test_a_stopped_replica_costs_each_read_milliseconds_and_returns_within_seconds(
    forwarded_replica,
):
    for _ in range(3):
        assert replica_read()[0] is None
    assert forwarded_replica.connections() >= 1  # the pool's, kept open

    forwarded_replica.cut()
    reads = [replica_read() for _ in range(10)]

    errors = [error for error, _ in reads]
    slowest = max(took for _, took in reads)
    print(f"replica stopped: 10 reads failed, slowest {slowest * 1000:.0f} ms")
    assert all(errors), errors
    assert all("refused" in str(error).lower() for error in errors), errors[0]
    # Not the replica pool's timeout (1 s), let alone the primary's (10 s):
    # the first read meets the dead connection and one refused attempt, the
    # others the pool's memory of that refusal.
    assert slowest < 0.3, [round(took, 3) for _, took in reads]

    forwarded_replica.restore()
    restored = time.monotonic()
    while (error := replica_read()[0]) is not None:
        assert time.monotonic() - restored < 3, f"replica still refused: {error}"
        time.sleep(0.05)
    back = time.monotonic() - restored
    print(f"replica back: reads succeed {back:.2f}s after its return")


@pytest.fixture
def hung_replica(monkeypatch):
    """`replica` pointed at a port that accepts connections and never answers."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen(16)
        replica = connections["replica"]
        replica.close()
        monkeypatch.setitem(replica.settings_dict, "PORT", str(sock.getsockname()[1]))
        yield
        replica.close()


def test_a_hung_replica_costs_a_read_the_replica_pools_timeout_at_most(hung_replica):
    error, took = replica_read()

    assert error is not None
    # Not the 5 s connect_timeout of a plain connection: the pool's 1 s.
    assert (
        base.DATABASE_REPLICA_POOL_TIMEOUT
        <= took
        < (base.DATABASE_REPLICA_POOL_TIMEOUT + 0.5)
    ), took
