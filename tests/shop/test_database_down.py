"""A database that goes away mid-session is a 503 that says so, never a 500.

The connection here dies while it is checked out (the test client keeps one
for the whole test), as when the server goes away during a request: the
pool's check cannot help, and the request that was using it fails. Idle
pooled connections killed by a restart are checked and replaced before any
request gets them (tests/shop/test_pool.py).
"""

import psycopg
import pytest
from django.db import close_old_connections, connection, connections
from django.test import Client

from tests.accounts.factories import CustomerFactory, UserFactory
from tests.dbs import ALL_DATABASES
from tests.orders.conftest import client_for

pytestmark = pytest.mark.django_db(transaction=True, databases=ALL_DATABASES)


def terminate(pid):
    """What a server restart or a failover does to the connection in use."""
    params = connections["default"].get_connection_params()
    with psycopg.connect(**params, autocommit=True) as other:
        other.execute("SELECT pg_terminate_backend(%s)", [pid])


def terminate_the_test_connection():
    connection.ensure_connection()
    terminate(connection.connection.info.backend_pid)


def assert_database_unavailable(response):
    assert response.status_code == 503, response.content[:300]
    assert response.json()["code"] == "database_unavailable"
    assert response["Retry-After"] == "1"


def test_a_terminated_connection_is_a_503_and_the_next_request_reconnects():
    client = client_for(CustomerFactory())
    assert client.get("/api/v1/cart/").status_code == 200
    pid = connection.connection.info.backend_pid
    terminate(pid)

    response = client.get("/api/v1/cart/")

    assert response.status_code == 503
    assert response.json()["code"] == "database_unavailable"
    assert response["Retry-After"] == "1"
    # Django closes an unusable connection when the request ends (the test
    # client leaves that signal out), which hands it back to the pool to be
    # discarded; the next request gets a live one.
    close_old_connections()
    assert client.get("/api/v1/cart/").status_code == 200
    assert connection.connection.info.backend_pid != pid


# Outside DRF: Django's own views, which its exception handler never sees.
# shop/middleware.py answers them the same way.


def test_an_admin_page_is_a_503_when_the_database_goes_away():
    """A staff member's admin page runs in the staff context's middleware."""
    client = Client()
    client.force_login(UserFactory(is_staff=True, is_superuser=True))
    assert client.get("/admin/").status_code == 200
    terminate_the_test_connection()

    assert_database_unavailable(client.get("/admin/"))

    close_old_connections()
    assert client.get("/admin/").status_code == 200


@pytest.mark.parametrize("page", ["/admin/login/", "/api-auth/login/"])
def test_a_login_form_is_a_503_when_the_database_goes_away(page):
    """Checking the password is the form's first query."""
    user = UserFactory()
    client = Client()
    form = {"username": user.email, "password": "Sh0p-test-pass"}
    terminate_the_test_connection()

    assert_database_unavailable(client.post(page, form))

    close_old_connections()
    # The form works again: a wrong password is the form again, a 200.
    assert client.post(page, {**form, "password": "wrong"}).status_code == 200
