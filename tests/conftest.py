"""Shared fixtures. The suite runs against the real primary and replica.

The app's queries run as shop_app (alias `default`), exactly as in
production; the test database is created and migrated as shop_owner
(alias `owner`), and `default` / `replica` mirror it (DESIGN.md pitfalls).
"""

import pytest
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
