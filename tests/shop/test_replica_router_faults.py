"""The read-replica router when things go wrong: never a failed request.

A lagging replica: its WAL replay is paused, for real, on the shared
standby (tests/replicas.py: replay_paused, as the cluster's superuser over
its Unix socket), and always resumed. The pauses last a second or two, well
inside what other test runs wait for the replica (tests/dbs.py).

A stopped replica is never the real one: the aliases are pointed at a
port where nothing listens, at a forwarder this test cuts
(tests/shop/forwarder.py), or at a socket that accepts and never answers.
Redis down: the cache is pointed at a port where nothing listens.
"""

import logging
import socket
import time
from decimal import Decimal

import pytest
from django.db import connections
from django.test import Client
from rest_framework.test import APIClient

from shop import replica
from shop.settings.base import redis_cache
from tests.accounts.factories import CustomerFactory
from tests.catalog.factories import ProductFactory, StockLevelFactory, VariantFactory
from tests.dbs import wait_for_replica
from tests.replicas import (
    REPLICA_DATABASES,
    make_catalog,
    ran,
    replay_paused,
    replica_port,
    replica_ready,
    suite_redis_cache,
)
from tests.shop.every_operation import server_errors, valid_inputs, walk
from tests.shop.forwarder import Forwarder

pytestmark = pytest.mark.django_db(transaction=True, databases=REPLICA_DATABASES)

STANDBY_ALIASES = ("replica", "readonly")
# What a stopped replica may cost a request: a refused connection, no wait.
FAST = 0.5


def listed_product(slug):
    product = ProductFactory(slug=slug, name=slug.title())
    StockLevelFactory(variant=VariantFactory(product=product, price=Decimal("5.00")))
    return product


def names(response):
    return {product["name"] for product in response.json()["results"]}


def wait_until(condition, timeout=5.0, what="the condition"):
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"{what} did not hold within {timeout}s"
        time.sleep(0.02)


@pytest.fixture
def point_standbys(monkeypatch):
    """Point both aliases on the standby's server at another port."""

    def point(port):
        for alias in STANDBY_ALIASES:
            connections[alias].close()
            monkeypatch.setitem(connections[alias].settings_dict, "PORT", str(port))

    yield point
    for alias in STANDBY_ALIASES:
        connections[alias].close()


@pytest.fixture
def dead_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))  # bound, never listening: refused
        yield sock.getsockname()[1]


# --- A lagging replica (replay paused) ---------------------------------------


def test_a_lagging_replica_sends_anonymous_reads_to_the_primary(
    replica_routing, queries_by_alias
):
    replica_routing.REPLICA_MAX_LAG_SECONDS = 60
    replica_routing.REPLICA_CHECK_SECONDS = 60  # one verdict until told
    make_catalog(products=1)
    replica_ready()

    with replay_paused():
        listed_product("fresh")
        # Under the maximum lag the replica still serves, and shows its age.
        with queries_by_alias() as on_replica:
            stale = APIClient().get("/api/v1/products/")
        # Past it, reads go to the primary.
        replica_routing.REPLICA_MAX_LAG_SECONDS = 0.5
        replica_routing.REPLICA_CHECK_SECONDS = 0.05
        wait_until(
            lambda: replica.replica_status(wait=True).state == "lagging",
            what="a lagging verdict",
        )
        lag = replica.replica_status().lag_seconds
        with queries_by_alias() as on_primary:
            fresh = APIClient().get("/api/v1/products/")

    assert ran(on_replica) == {"replica": 1}
    assert names(stale) == {"Lamp 0"}
    assert ran(on_primary) == {"default": 1}
    assert names(fresh) == {"Lamp 0", "Fresh"}
    assert lag >= 0.5
    # Replay resumed: once the replica has caught up, it serves again.
    replica_routing.REPLICA_CHECK_SECONDS = 60
    replica_ready()
    with queries_by_alias() as again:
        caught_up = APIClient().get("/api/v1/products/")
    assert ran(again) == {"replica": 1}
    assert names(caught_up) == {"Lamp 0", "Fresh"}


def test_a_client_reads_its_own_write_while_the_replica_lags(replica_routing):
    replica_routing.REPLICA_MAX_LAG_SECONDS = 60  # the lag alone never moves reads
    replica_routing.REPLICA_CHECK_SECONDS = 60  # one verdict for the whole test
    replica_routing.READ_YOUR_WRITES_SECONDS = 1
    make_catalog(products=1)
    replica_ready()
    shopper, stranger = Client(), Client()
    session = shopper.session  # an anonymous session, with its cookie
    session.save()

    with replay_paused():
        listed_product("fresh")
        registered = shopper.post(
            "/api/v1/auth/register/",
            {"email": "new@example.test", "password": "Sh0p-test-pass"},
            content_type="application/json",
        )
        own = shopper.get("/api/v1/products/fresh/").status_code
        others = stranger.get("/api/v1/products/fresh/").status_code
        # The window is bounded: then the shopper reads the replica again.
        wait_until(
            lambda: not replica.written_recently(f"session:{session.session_key}"),
            what="the end of the read-your-writes window",
        )
        own_later = shopper.get("/api/v1/products/fresh/").status_code

    assert registered.status_code == 201
    assert own == 200  # from the primary
    assert others == 404  # from the replica, which has not replayed it yet
    assert own_later == 404


# --- A stopped or hung replica -----------------------------------------------


def test_a_stopped_replica_costs_anonymous_readers_nothing(
    replica_routing, point_standbys, dead_port, queries_by_alias
):
    replica_routing.REPLICA_CHECK_SECONDS = 0.1
    make_catalog(products=2)
    replica_ready()
    point_standbys(dead_port)

    answers, slowest = [], 0.0
    deadline = time.monotonic() + 1  # the old verdict's life and then some
    with queries_by_alias() as queries:
        while time.monotonic() < deadline:
            started = time.monotonic()
            answers.append(APIClient().get("/api/v1/products/").status_code)
            slowest = max(slowest, time.monotonic() - started)

    assert set(answers) == {200}
    assert slowest < FAST, f"a read took {slowest:.3f}s with the replica stopped"
    assert "replica" not in ran(queries)
    status = replica.replica_status(wait=True)
    assert status.state == "down"
    assert "refused" in status.detail.lower()


def test_a_replica_that_stops_after_its_verdict_is_answered_from_the_primary(
    replica_routing, point_standbys, queries_by_alias, caplog
):
    """The verdict still says ok, the request goes to the replica and fails
    there: it is answered again from the primary, and the replica is out of
    use until the next probe."""
    replica_routing.REPLICA_CHECK_SECONDS = 60  # the verdict stays "ok" throughout
    forwarder = Forwarder("127.0.0.1", replica_port())
    forwarder.open()
    try:
        point_standbys(forwarder.port)
        make_catalog(products=2)
        replica_ready()
        with queries_by_alias() as before:
            assert APIClient().get("/api/v1/products/").status_code == 200

        forwarder.cut()
        with caplog.at_level(logging.WARNING, logger="shop.middleware"):
            with queries_by_alias() as during:
                started = time.monotonic()
                response = APIClient().get("/api/v1/products/")
                elapsed = time.monotonic() - started
            with queries_by_alias() as after:
                next_one = APIClient().get("/api/v1/products/")
    finally:
        forwarder.close()

    assert ran(before) == {"replica": 1}
    assert response.status_code == 200
    assert names(response) == {"Lamp 0", "Lamp 1"}
    assert elapsed < FAST + 1, f"the retried read took {elapsed:.3f}s"
    # Tried on the replica (a refused connection, or a statement on a
    # connection that died), then read from the primary.
    assert ran(during)["default"] == 1
    assert ran(during).keys() <= {"default", "replica"}
    assert "answered again from the primary" in caplog.text
    assert replica.replica_status().state == "down"
    # The next reads skip the replica without trying it.
    assert next_one.status_code == 200
    assert ran(after) == {"default": 1}
    assert caplog.text.count("answered again from the primary") == 1


def test_a_replica_that_never_answers_costs_readers_nothing(
    replica_routing, point_standbys, queries_by_alias
):
    """It accepts connections and says nothing: the probe waits out its
    connect timeout in its own thread, and requests read the primary."""
    make_catalog(products=1)
    wait_for_replica()
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(16)  # the kernel completes connections; nobody reads
        point_standbys(silent.getsockname()[1])
        replica.replica_forget()

        slowest = 0.0
        with queries_by_alias() as queries:
            for _ in range(5):
                started = time.monotonic()
                assert APIClient().get("/api/v1/products/").status_code == 200
                slowest = max(slowest, time.monotonic() - started)
        status = replica.replica_status(wait=True)

    assert slowest < FAST, f"a read took {slowest:.3f}s with the replica silent"
    assert ran(queries) == {"default": 5}
    assert status.state in {"down", "unknown"}
    assert not status.usable


# The event log's endpoints on an in-process store: with none, they answer
# 503 whatever else is up (tests/conftest.py:event_store_in_process).
@pytest.mark.usefixtures("event_store_in_process")
@pytest.mark.django_db(transaction=True, databases=[*REPLICA_DATABASES, "loader"])
def test_every_operation_answers_with_routing_on_and_the_replica_stopped(
    replica_routing, point_standbys, dead_port
):
    replica_routing.REPLICA_CHECK_SECONDS = (
        60  # the first catalog read meets the outage
    )
    inputs = valid_inputs()
    replica_ready()
    point_standbys(dead_port)

    answers = walk(inputs.values, inputs.auth, before_each=inputs.refill_cart)

    assert not server_errors(answers)
    assert answers["GET /api/v1/products/"].status_code == 200
    assert replica.replica_status().state == "down"


# --- Redis down: no markers ----------------------------------------------------


def test_with_redis_down_clients_with_markers_read_the_primary_and_writes_answer(
    replica_routing, dead_port, queries_by_alias, caplog
):
    replica_routing.READ_YOUR_WRITES_SECONDS = 0.5
    make_catalog(products=1)
    variant = StockLevelFactory().variant
    customer = Client()
    customer.force_login(CustomerFactory().user)
    shopper = Client()
    session = shopper.session  # an anonymous session, saved, with its cookie
    session["seen"] = True
    session.save()
    replica_ready()
    replica_routing.CACHES = {
        "default": redis_cache(f"redis://127.0.0.1:{dead_port}/0")
    }

    with queries_by_alias() as sessionless:
        anonymous = APIClient().get("/api/v1/products/")
    with queries_by_alias() as queries:
        read = shopper.get("/api/v1/products/")
    wrote = customer.post(
        "/api/v1/cart/items/",
        {"sku": variant.sku, "quantity": 1},
        content_type="application/json",
    )
    replica.mark_written("catalog:v:global", "user:0")  # cannot, and does not raise

    # A client without a session has no marker of its own to ask for, and
    # only a client's own markers move its request (a catalog write's are
    # for the catalog cache's fills, and with Redis down nothing is
    # filled): before any marker failed, the replica still serves it.
    assert anonymous.status_code == 200
    assert ran(sessionless) == {"replica": 1}
    # Its session's marker could not be read: primary.
    assert read.status_code == 200
    assert "replica" not in ran(queries) and ran(queries)["default"] >= 1
    assert wrote.status_code == 201
    assert "read-your-writes markers unavailable" in caplog.text

    # Redis is back, but markers left during the outage may be missing: the
    # process reads the primary for one more window, then the replica again.
    replica_routing.CACHES = suite_redis_cache()
    assert replica.written_recently("anything")
    wait_until(
        lambda: not replica.written_recently("anything"),
        what="the end of the window after the outage",
    )
    assert replica.replica_status(wait=True).usable
    with queries_by_alias() as later:
        assert APIClient().get("/api/v1/products/").status_code == 200
    assert ran(later) == {"replica": 1}
