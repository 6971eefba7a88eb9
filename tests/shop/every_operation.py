"""A valid request to every operation and page, for tests that stop a service.

The operations are shop/api_inventory.py's (the schema, plus the pages
outside it), so a new endpoint is walked here without anyone listing it;
an input without a value here fails with a message saying where to add it.
"""

import json
import uuid
from urllib.parse import quote, urlencode

from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from orders.models import CartItem
from shop import api_inventory as inventory
from shop.openapi import CUSTOMER, STAFF
from tests.accounts.factories import CustomerFactory, UserFactory
from tests.catalog.factories import (
    CategoryFactory,
    StockLevelFactory,
    WarehouseFactory,
)
from tests.dbs import as_staff
from tests.orders.factories import (
    CartFactory,
    CartItemFactory,
    CouponFactory,
    OrderFactory,
)

WHERE = "tests/shop/every_operation.py:valid_values"
PASSWORD = "Sh0p-test-pass"  # UserFactory's


def operations():
    return [*inventory.operations(), *inventory.PAGES]


def valid_values():
    """Make the rows; return (values by input name, Authorization by audience,
    a function that puts the customer's cart line back).

    Call the last before each operation, so that a DELETE of the line does
    not leave checkout with an empty cart.
    """
    customer = CustomerFactory()
    staff = UserFactory(is_staff=True)
    level = StockLevelFactory(quantity_on_hand=1_000, warehouse=WarehouseFactory())
    line = CartItemFactory(cart=CartFactory(customer=customer), variant=level.variant)
    values = inventory.Values(
        WHERE,
        {
            # The customer's own: the token request logs in, and registering
            # meets a taken address.
            "email": customer.user.email,
            "password": PASSWORD,
            "category": CategoryFactory().slug,
            "slug": level.variant.product.slug,
            "sku": level.variant.sku,
            "variants.sku": lambda _: f"WALK-{uuid.uuid4().hex[:12].upper()}",
            "name": "Lamp",
            "description": "Warm.",
            "price": "9.99",
            "stock": 2,
            "warehouse": level.warehouse.code,
            "quantity_on_hand": 7,
            "item_id": line.pk,
            "quantity": 1,
            "line1": "1 Test Street",
            "line2": "Flat 2",
            "city": "Testville",
            "postal_code": "12345",
            "country": "US",
            "payment_token": "tok_ok",
            "coupon": CouponFactory().code,
            "Idempotency-Key": lambda _: str(uuid.uuid4()),
            "order_id": OrderFactory(customer=customer, status="failed").pk,
        },
    )
    auth = {
        CUSTOMER: f"Token {Token.objects.create(user=customer.user).key}",
        STAFF: f"Token {Token.objects.create(user=staff).key}",
    }

    def refill_cart(label=None):
        with as_staff():
            CartItem.objects.get_or_create(
                cart=line.cart, variant=line.variant, defaults={"quantity": 1}
            )

    return values, auth, refill_cart


def walk(values, auth, before_each=None):
    """{label: response} for a valid request to each operation, as its audience.

    `before_each(label)` runs before each request, for a test that records
    which operation did what.
    """
    client = APIClient(raise_request_exception=False)
    answers = {}
    for operation in operations():
        if before_each is not None:
            before_each(operation.label)
        valid = inventory.valid_request(operation, values)
        headers = {"Authorization": auth.get(operation.audience, ""), **valid.headers}
        answers[operation.label] = client.generic(
            operation.method,
            valid.path,
            json.dumps(valid.body).encode() if valid.body is not None else b"",
            content_type=valid.content_type,
            QUERY_STRING=urlencode(valid.query, quote_via=quote, safe=""),
            **{
                "HTTP_" + name.upper().replace("-", "_"): value
                for name, value in headers.items()
                if value
            },
        )
    return answers


def server_errors(answers, allowed=()):
    """The answers that are 5xx, but for the labels in `allowed`."""
    return {
        label: f"{response.status_code} {response.content[:200]!r}"
        for label, response in answers.items()
        if response.status_code >= 500 and label not in allowed
    }
