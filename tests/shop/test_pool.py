"""Pooled connections survive what a server restart does to them.

A restart (`pg_ctl restart -m fast`) or a failover ends the server process
behind every connection the app holds. The idle ones in the pool do not
notice until they are used, so a pool that hands them out unchecked fails
one request per dead connection. The pool of `default` checks each
connection before handing it out, and sweeps the whole pool at the first
dead one (shop/settings/base.py: database(), shop/db_backend/base.py).

The requests go through a live server, so each one borrows a connection
from the pool and returns it when it ends, exactly as under runserver or
gunicorn; the test client would keep one connection for the whole test.
"""

import json
import time
import urllib.error
import urllib.request

import psycopg
import pytest
from django.db import connections
from rest_framework.authtoken.models import Token

from tests.accounts.factories import CustomerFactory
from tests.catalog.factories import ProductFactory
from tests.dbs import ALL_DATABASES

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
