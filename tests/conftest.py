"""Shared fixtures. The suite runs against the real primary and replica.

The app's queries run as shop_app (alias `default`), exactly as in
production; the test database is created and migrated as shop_owner
(alias `owner`), and `default` / `replica` mirror it (DESIGN.md pitfalls).
"""

import pytest
from django.db import connections
from rest_framework.test import APIClient


@pytest.fixture
def api_client():
    return APIClient()


@pytest.fixture
def customer_user(db):
    from tests.accounts.factories import CustomerFactory

    return CustomerFactory().user


@pytest.fixture
def customer_client(customer_user):
    client = APIClient()
    client.force_authenticate(customer_user)
    return client


@pytest.fixture
def staff_user(db):
    from tests.accounts.factories import UserFactory

    return UserFactory(is_staff=True)


@pytest.fixture
def staff_client(staff_user):
    client = APIClient()
    client.force_authenticate(staff_user)
    return client


def close_every_pool():
    for alias in connections:
        connections[alias].close()
        connections[alias].close_pool()


@pytest.fixture(scope="session")
def django_db_setup(django_db_setup, django_db_blocker):
    """The root conftest's set-up, with the connection pools closed around it.

    After the set-up: a mirror's test database is only a new NAME in its
    settings (set_as_test_mirror), and a pool keeps the connection
    parameters it was built with. A pool of `default` built before the
    set-up (anything that connected during collection) would go on handing
    out connections to the development database; closed, the next
    connection builds one on the test database.

    Before teardown: Django closes the pool of the alias whose test database
    it drops (`owner`) but not those of its mirrors: the pooled `default`
    would keep its idle connections open and DROP DATABASE would refuse
    ("being accessed by other users").
    """
    with django_db_blocker.unblock():
        close_every_pool()
    yield
    with django_db_blocker.unblock():
        close_every_pool()
