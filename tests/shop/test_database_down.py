"""A database that goes away mid-session is a 503 that says so, never a 500."""

import psycopg
import pytest
from django.db import close_old_connections, connection, connections

from tests.accounts.factories import CustomerFactory
from tests.dbs import ALL_DATABASES
from tests.orders.conftest import client_for

pytestmark = pytest.mark.django_db(transaction=True, databases=ALL_DATABASES)


def test_a_terminated_connection_is_a_503_and_the_next_request_reconnects():
    client = client_for(CustomerFactory())
    assert client.get("/api/v1/cart/").status_code == 200
    pid = connection.connection.info.backend_pid
    # What a server restart or a failover does to an idle pooled connection.
    params = connections["default"].get_connection_params()
    with psycopg.connect(**params, autocommit=True) as other:
        other.execute("SELECT pg_terminate_backend(%s)", [pid])

    response = client.get("/api/v1/cart/")

    assert response.status_code == 503
    assert response.json()["code"] == "database_unavailable"
    assert response["Retry-After"] == "1"
    # Django closes an unusable connection when the request ends (the test
    # client leaves that signal out); the next request opens a new one.
    close_old_connections()
    assert client.get("/api/v1/cart/").status_code == 200
    assert connection.connection.info.backend_pid != pid
