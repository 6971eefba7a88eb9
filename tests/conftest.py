"""Shared fixtures. The suite runs against the real primary and replica.

The app's queries run as shop_app (alias `default`), exactly as in
production; the test database is created and migrated as shop_owner
(alias `owner`), and `default` / `replica` mirror it (DESIGN.md pitfalls).
"""

import pytest
from django.db import connections
from rest_framework.test import APIClient

from shop import pgbouncer, replica
from tests import replicas


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


@pytest.fixture
def event_store_in_process(settings):
    """The event log on an in-process mongomock store, for the tests that walk
    every operation: with no store, the event-log endpoints answer 503 before
    they read their input. tests/analytics/ tests them on MongoDB too."""
    from analytics import event_store

    settings.MONGO_URL = event_store.MOCK_SCHEME
    event_store.forget_clients()
    yield
    event_store.forget_clients()


def forget_the_catalog_cache():
    from catalog.cache import everything_forget, store

    store.forget_failures()
    everything_forget()


@pytest.fixture(autouse=True)
def catalog_cache_forgotten():
    """Every test starts with nothing in the catalog cache.

    The cache lives in Redis, outside the test database that each test
    rolls back or flushes: an entry stored by an earlier test (the same slug,
    the same list query) would answer for rows that are gone. Moving the
    global version retires every entry (catalog/cache/__init__.py).
    """
    forget_the_catalog_cache()


def close_every_pool():
    # A probe of the read-replica router may hold a pooled connection: let it
    # finish first.
    replica.replica_forget()
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
    ("being accessed by other users"). pgbouncer keeps its own server
    connections to the test database after its clients leave (the app's, when
    DATABASE_VIA_PGBOUNCER is on, and the pgbouncer tests' and lab's), so it
    is told to close them too.
    """
    with django_db_blocker.unblock():
        close_every_pool()
    # Entries an earlier run left in Redis under this test database's name,
    # for rows that the new database does not have.
    forget_the_catalog_cache()
    yield
    with django_db_blocker.unblock():
        close_every_pool()
        pgbouncer.release_database(connections["owner"].settings_dict["NAME"])


@pytest.fixture
def queries_by_alias():
    """Capture what each alias runs: `with queries_by_alias() as q:`, then q["replica"].

    Query counts count every alias: a read that moved from the primary to
    the replica, or back, shows (tests/replicas.py).
    """
    return replicas.queries_by_alias


@pytest.fixture
def replica_routing(settings):
    """Anonymous catalog reads on the replica, for this test (tests/replicas.py)."""
    with replicas.replica_reads_on(settings):
        yield settings
