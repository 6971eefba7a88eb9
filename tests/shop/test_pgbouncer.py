"""pgbouncer in transaction mode, and what it changes for the app (chapter 16).

scripts/services.sh runs pgbouncer in front of the primary, TLS on both
sides; DATABASE_VIA_PGBOUNCER=1 sends `default` through it (`make
test-pgbouncer` runs the row-level security suite, the checkout's races and
this file that way). A server connection serves one transaction of a client
and then another client's, the one released last first: so two clients
that take turns share one server session, and whatever lives in a session
rather than a transaction meets the next client. Each caveat is shown here
on real connections, and so is the app's way around it.

The tests force "the next transaction lands on another server connection"
by having another client hold the server connection in a transaction.
"""

import json
import os
import subprocess
import sys
from contextlib import contextmanager

import psycopg
import pytest
from django.conf import settings
from django.db import DatabaseError, connections
from rest_framework.test import APIClient

from catalog.models import Category
from shop import pgbouncer
from shop.settings.base import connection_budget, through_pgbouncer
from tests.accounts.factories import CustomerFactory
from tests.catalog.factories import CategoryFactory
from tests.dbs import ALL_DATABASES

pytestmark = pytest.mark.django_db(transaction=True, databases=ALL_DATABASES)

SERVER_PID = "SELECT pg_backend_pid()"


@pytest.fixture(autouse=True)
def running_pgbouncer():
    try:
        return pgbouncer.config()
    except psycopg.OperationalError as error:
        pytest.skip(
            f"pgbouncer does not answer on {settings.PGBOUNCER_HOST}:"
            f"{settings.PGBOUNCER_PORT} ({error}): apt-get install pgbouncer, "
            "then scripts/services.sh up"
        )


@pytest.fixture
def clients():
    """New client connections to pgbouncer as shop_app, closed afterwards."""
    opened = []

    def connect(**overrides):
        conn = pgbouncer.connect(**overrides)
        opened.append(conn)
        return conn

    yield connect
    for conn in opened:
        conn.close()
    pgbouncer.reconnect(connections["default"].settings_dict["NAME"])


def server_of(conn) -> int:
    return conn.execute(SERVER_PID).fetchone()[0]


@contextmanager
def holding(conn, server: int):
    """`conn` holds server connection `server` in a transaction for the block.

    It gets the one released last, as pgbouncer hands them out (LIFO).
    """
    with conn.transaction():
        assert server_of(conn) == server, "pgbouncer handed out another server"
        yield


@pytest.fixture
def via_pgbouncer(monkeypatch):
    """`default` through pgbouncer, as DATABASE_VIA_PGBOUNCER=1 sets it.

    Its pool is built again through pgbouncer (shop/db_backend/base.py: a
    pool whose settings moved), and once more after the test.
    """
    default = connections["default"]
    routed = through_pgbouncer(default.settings_dict)
    default.close()
    for key in ("HOST", "PORT", "OPTIONS", "DISABLE_SERVER_SIDE_CURSORS"):
        monkeypatch.setitem(default.settings_dict, key, routed[key])
    yield default
    default.close()


# --- pgbouncer as services.sh runs it, and the settings -----------------------


def test_the_settings_match_the_running_pgbouncer(running_pgbouncer):
    found = running_pgbouncer

    assert found["pool_mode"] == "transaction"
    assert int(found["listen_port"]) == settings.PGBOUNCER_PORT
    # The budget of shop/settings/base.py counts with these two.
    assert int(found["default_pool_size"]) == settings.PGBOUNCER_POOL_SIZE
    assert int(found["max_client_conn"]) == settings.PGBOUNCER_MAX_CLIENT_CONN
    # Transaction mode runs no reset query between clients: hence the leaks.
    assert found["server_reset_query_always"] == "0"
    # TLS on both sides, with the local CA.
    assert found["client_tls_sslmode"] == "require"
    assert found["server_tls_sslmode"] == "verify-full"
    assert found["server_tls_ca_file"] == settings.DB_SSLROOTCERT


def test_the_suites_widest_race_gets_a_server_connection_per_transaction():
    # tests/orders/test_concurrency.py: 24 racers, each in a transaction at
    # the barrier, and the test's own; fewer server connections and the
    # last racers would wait for one while the others wait for them.
    assert settings.PGBOUNCER_POOL_SIZE >= 25


def test_a_client_without_tls_is_refused():
    with pytest.raises(psycopg.OperationalError, match="SSL required"):
        pgbouncer.connect(sslmode="disable").close()


def test_both_legs_are_encrypted_and_the_primary_verified(clients):
    conn = clients()

    assert conn.pgconn.ssl_in_use
    # The primary's view of the server connection pgbouncer made for it.
    ssl = conn.execute(
        "SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()"
    ).fetchone()
    assert ssl == (True,)


def settings_with(**env) -> dict:
    """`DATABASES` of shop.settings.test in a fresh interpreter with `env`."""
    dump = (
        "import json; from shop.settings import test; "
        "print(json.dumps(test.DATABASES, default=str))"
    )
    done = subprocess.run(
        [sys.executable, "-c", dump],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    return json.loads(done.stdout.splitlines()[-1])


def test_the_setting_routes_default_and_only_default_through_pgbouncer():
    direct = settings_with(DATABASE_VIA_PGBOUNCER="0")
    routed = settings_with(DATABASE_VIA_PGBOUNCER="1")

    default = routed["default"]
    assert (default["HOST"], default["PORT"]) == (
        settings.PGBOUNCER_HOST,
        str(settings.PGBOUNCER_PORT),
    )
    assert default["DISABLE_SERVER_SIDE_CURSORS"] is True
    assert default["OPTIONS"]["prepare_threshold"] is None
    # The same role, database, TLS policy and pool.
    for key in ("USER", "NAME"):
        assert default[key] == direct["default"][key]
    for option in ("sslmode", "pool"):
        assert default["OPTIONS"][option] == direct["default"]["OPTIONS"][option]
    for alias in ("owner", "replica", "readonly", "loader"):
        assert routed[alias] == direct[alias], alias


def test_the_budget_through_pgbouncer_counts_its_pool_not_the_processes():
    databases = settings.DATABASES
    threads = settings.DATABASE_THREADS
    default = databases["default"]["OPTIONS"]["pool"]["max_size"]

    direct = connection_budget(
        databases, threads=threads, processes=2, via_pgbouncer=False
    )
    routed = connection_budget(
        databases, threads=threads, processes=2, via_pgbouncer=True
    )

    assert direct["primary"] == 2 * (default + threads)
    assert routed["primary"] == settings.PGBOUNCER_POOL_SIZE
    assert routed["pgbouncer"] == direct["primary"]
    assert routed["replica"] == direct["replica"]


# --- Two clients, one server connection ---------------------------------------


def test_two_clients_that_take_turns_share_one_server_connection(clients):
    a, b = clients(), clients()

    assert a.info.backend_pid != b.info.backend_pid  # pgbouncer's keys, per client
    server = server_of(a)
    assert server_of(b) == server_of(a) == server
    # pgbouncer's console names the same server process.
    name = connections["default"].settings_dict["NAME"]
    assert server in {row["remote_pid"] for row in pgbouncer.server_connections(name)}


def test_the_apps_transaction_local_context_never_reaches_the_next_client(clients):
    a, b = clients(), clients()
    server = server_of(a)

    with a.transaction():
        a.execute("SELECT set_config('app.customer_id', '42', true)")
        assert a.execute("SELECT current_setting('app.customer_id')").fetchone() == (
            "42",
        )

    seen = b.execute(
        f"{SERVER_PID}, current_setting('app.customer_id', true)"
    ).fetchone()
    assert seen[0] == server  # the server connection A used...
    assert seen[1] in ("", None)  # ...with nothing of A's on it


def test_a_session_level_set_leaks_to_the_next_client(clients):
    """Why the app never uses one (shop/db_context.py); a name no policy reads."""
    a, b = clients(), clients()
    server = server_of(a)

    a.execute("SET lab.customer_id = '42'")
    seen = b.execute(f"{SERVER_PID}, current_setting('lab.customer_id', true)")

    assert seen.fetchone() == (server, "42")
    b.execute("RESET lab.customer_id")


# --- Prepared statements ------------------------------------------------------


def test_a_prepared_statement_is_missing_on_the_next_server_connection(clients):
    preparing, other = clients(prepare_threshold=0), clients()
    query = f"{SERVER_PID}, %s::int"
    (server, _) = preparing.execute(query, [1]).fetchone()

    with (
        holding(other, server),
        pytest.raises(psycopg.errors.InvalidSqlStatementName, match="_pg3_"),
    ):
        preparing.execute(query, [2])


def test_djangos_connections_prepare_nothing_so_any_server_connection_will_do(
    via_pgbouncer, clients
):
    other = clients()
    assert via_pgbouncer.get_connection_params()["prepare_threshold"] is None
    with via_pgbouncer.cursor() as cursor:
        # psycopg would prepare a statement run five times (its default).
        for n in range(6):
            cursor.execute("SELECT pg_backend_pid(), %s::int", [n])
        server, _ = cursor.fetchone()

        with holding(other, server):
            cursor.execute("SELECT pg_backend_pid(), %s::int", [6])
            moved, six = cursor.fetchone()

    assert (moved != server, six) == (True, 6)


def test_the_payment_gateways_own_connection_prepares_nothing_either(
    via_pgbouncer, clients
):
    """The fake gateway opens a connection of its own from `default`'s
    parameters (orders/payments.py:_Kept). It once dropped prepare_threshold
    with Django's own options, took psycopg's default (prepare on the fifth
    run) and failed checkouts through pgbouncer with "prepared statement
    _pg3_0 already exists" (found by bench/http.py)."""
    from orders.payments import _Kept

    kept = _Kept.of_this_thread()
    with kept.lock:
        try:
            gateway = kept.connect()
            assert gateway.info.port == settings.PGBOUNCER_PORT
            assert gateway.prepare_threshold is None
            other = clients()
            for _ in range(6):  # psycopg would prepare on the fifth
                (server,) = gateway.execute(SERVER_PID).fetchone()
            with holding(other, server):
                assert gateway.execute("SELECT %s::int", [7]).fetchone() == (7,)
        finally:
            kept.close()


# --- Server-side cursors ------------------------------------------------------


def iterate_while_the_server_connection_changes(default, other) -> list[str]:
    """Read categories one at a time; between rows, `other` takes the server."""
    rows = Category.objects.order_by("pk").iterator(chunk_size=1)
    names = [next(rows).name]
    with default.cursor() as cursor:
        cursor.execute(SERVER_PID)  # the connection the iterator ran on last
        (server,) = cursor.fetchone()
    with holding(other, server):
        names += [category.name for category in rows]
    return names


def test_djangos_iterator_breaks_through_pgbouncer_with_server_side_cursors(
    via_pgbouncer, clients, monkeypatch
):
    CategoryFactory.create_batch(3)
    monkeypatch.setitem(
        via_pgbouncer.settings_dict, "DISABLE_SERVER_SIDE_CURSORS", False
    )

    # A cursor WITH HOLD lives in the session that declared it; the next
    # FETCH runs on another server connection (and so does Django's CLOSE of
    # it, whose error escapes unwrapped from psycopg).
    with pytest.raises(
        (DatabaseError, psycopg.Error), match='cursor ".*" does not exist'
    ):
        iterate_while_the_server_connection_changes(via_pgbouncer, clients())


def test_with_server_side_cursors_disabled_the_iterator_reads_every_row(
    via_pgbouncer, clients
):
    names = sorted(c.name for c in CategoryFactory.create_batch(3))
    assert via_pgbouncer.settings_dict["DISABLE_SERVER_SIDE_CURSORS"] is True

    assert (
        sorted(iterate_while_the_server_connection_changes(via_pgbouncer, clients()))
        == names
    )


# --- The app through pgbouncer ------------------------------------------------


def test_the_api_works_through_pgbouncer_on_pooled_checked_connections(via_pgbouncer):
    CategoryFactory()
    customer = APIClient()
    customer.force_authenticate(CustomerFactory().user)

    assert APIClient().get("/api/v1/categories/").status_code == 200
    assert customer.get("/api/v1/cart/").status_code == 200
    assert customer.get("/api/v1/orders/").status_code == 200

    pool = via_pgbouncer.pool
    assert pool.kwargs["port"] == str(settings.PGBOUNCER_PORT)
    name = via_pgbouncer.settings_dict["NAME"]
    users = {
        row["user"] for row in pgbouncer.show("CLIENTS") if row["database"] == name
    }
    assert "shop_app" in users


def test_releasing_the_test_database_closes_pgbouncers_server_connections(clients):
    name = connections["default"].settings_dict["NAME"]
    server_of(clients())
    assert pgbouncer.server_connections(name)

    assert pgbouncer.release_database(name) is True

    assert pgbouncer.server_connections(name) == []
    # RESUME let new clients in again.
    assert server_of(clients()) > 0


def test_default_goes_through_pgbouncer_exactly_when_the_setting_says_so():
    """`make test-pgbouncer` really sends the app's queries through it."""
    default = connections["default"]
    with default.cursor() as cursor:
        cursor.execute("SELECT 1")
        port = default.connection.info.port

    assert (port == settings.PGBOUNCER_PORT) is settings.DATABASE_VIA_PGBOUNCER
