import uuid

import pytest
from rest_framework.test import APIClient

from tests.accounts.factories import CustomerFactory
from tests.catalog.factories import StockLevelFactory
from tests.orders.gateway import GatewayCalls, ledger_clear

ADDRESS = {
    "line1": "1 Test Street",
    "city": "Testville",
    "postal_code": "12345",
    "country": "US",
}


@pytest.fixture
def stocked_sku(db):
    """A SKU priced 19.99 with 5 units on hand in the default warehouse."""
    return StockLevelFactory(quantity_on_hand=5).variant.sku


def client_for(customer):
    client = APIClient()
    client.force_authenticate(customer.user)
    return client


@pytest.fixture
def gateway(transactional_db, settings):
    """The fake payment gateway with an empty ledger, counting the shop's calls.

    Returns the GatewayCalls installed as PAYMENT_GATEWAY_HOOK
    (tests/orders/gateway.py); add hooks with `gateway.also(...)`.
    """
    ledger_clear()
    calls = GatewayCalls()
    settings.PAYMENT_GATEWAY_HOOK = calls
    return calls


@pytest.fixture
def customer(db):
    return CustomerFactory()


@pytest.fixture
def shopper(customer):
    return client_for(customer)


def checkout(client, key=None, payment="tok_ok", **extra):
    body = {"shipping_address": ADDRESS, "payment_token": payment, **extra}
    return client.post(
        "/api/v1/checkout/",
        body,
        format="json",
        HTTP_IDEMPOTENCY_KEY=key or str(uuid.uuid4()),
    )
