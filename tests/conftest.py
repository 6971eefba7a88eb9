"""Shared fixtures. The suite runs against the real primary and replica.

The app's queries run as shop_app (alias `default`), exactly as in
production; the test database is created and migrated as shop_owner
(alias `owner`), and `default` / `replica` mirror it (DESIGN.md pitfalls).
"""

import pytest
from django.db import connections
from rest_framework.test import APIClient


@pytest.fixture(scope="session")
def django_db_setup(
    request, django_test_environment, django_db_blocker, django_db_keepdb
):
    """Create the test database for all three aliases, not only the ones asked for."""
    from django.test.utils import setup_databases, teardown_databases

    with django_db_blocker.unblock():
        config = setup_databases(
            verbosity=request.config.option.verbose,
            interactive=False,
            keepdb=django_db_keepdb,
            aliases={"owner", "default", "replica"},
        )
    yield
    if not django_db_keepdb:
        with django_db_blocker.unblock():
            connections.close_all()
            teardown_databases(config, verbosity=request.config.option.verbose)


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
