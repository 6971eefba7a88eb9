"""A valid request to every operation and page: for tests that stop a service,
and the valid values the hostile-input test varies one at a time.

The operations are shop/api_inventory.py's (the schema, plus the pages
outside it), so a new endpoint is walked here without anyone listing it;
an input without a value here fails with a message saying where to add it.
"""

import json
import uuid
from dataclasses import dataclass
from urllib.parse import quote, urlencode

from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from orders.models import CartItem
from shop import api_inventory as inventory
from shop.accounts.models import Customer
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

WHERE = "tests/shop/every_operation.py:valid_inputs"
PASSWORD = "Sh0p-test-pass"  # UserFactory's


def operations():
    return [*inventory.operations(), *inventory.PAGES]


@dataclass(frozen=True)
class ValidInputs:
    """The rows a valid request to every operation needs, and its values."""

    customer: Customer
    cart_line: CartItem
    # A valid value for every input of every operation, by input name.
    values: inventory.Values
    # The Authorization header of a request made for each audience.
    auth: dict

    def refill_cart(self, label=None):
        """Put the customer's cart line back if a request used it up.

        Call it before each operation, so that a DELETE of the line or a
        checkout does not leave the next checkout with an empty cart.
        """
        with as_staff():
            CartItem.objects.get_or_create(
                cart=self.cart_line.cart,
                variant=self.cart_line.variant,
                defaults={"quantity": 1},
            )


def valid_inputs() -> ValidInputs:
    """Make the rows, and the values keyed by input name, never by endpoint."""
    customer = CustomerFactory()
    staff = UserFactory(is_staff=True)
    level = StockLevelFactory(quantity_on_hand=1_000_000, warehouse=WarehouseFactory())
    line = CartItemFactory(cart=CartFactory(customer=customer), variant=level.variant)
    values = inventory.Values(
        WHERE,
        {
            # accounts: the customer's own, so that the token request logs in
            # and a registration meets a taken address (never a new account).
            "email": customer.user.email,
            "password": PASSWORD,
            # catalog
            "category": CategoryFactory().slug,
            "slug": level.variant.product.slug,
            "sku": level.variant.sku,
            # A product made by an accepted value needs a SKU of its own.
            "variants.sku": lambda _: f"VALID-{uuid.uuid4().hex[:12].upper()}",
            "name": "Lamp",
            "description": "Warm.",
            "price": "9.99",
            # Staff PATCHes: keep the product and variant on sale, so the
            # product's page still answers for the operations after them.
            "is_active": True,
            "stock": 2,
            "warehouse": level.warehouse.code,
            "quantity_on_hand": 7,
            # cart, checkout, orders
            "item_id": line.pk,
            "quantity": 1,
            "line1": "1 Test Street",
            "line2": "Flat 2",
            "city": "Testville",
            "postal_code": "12345",
            "country": "US",
            "payment_token": "tok_ok",
            "coupon": CouponFactory().code,
            # Checkout answers a reused key with the stored response.
            "Idempotency-Key": lambda _: str(uuid.uuid4()),
            # Failed, not pending: a pending order would hold up every checkout.
            "order_id": OrderFactory(customer=customer, status="failed").pk,
        },
    )
    auth = {
        CUSTOMER: f"Token {Token.objects.create(user=customer.user).key}",
        STAFF: f"Token {Token.objects.create(user=staff).key}",
    }
    return ValidInputs(customer=customer, cart_line=line, values=values, auth=auth)


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
        answers[operation.label] = client.generic(
            operation.method, **request_kwargs(valid, auth.get(operation.audience))
        )
    return answers


def request_kwargs(valid, authorization=None) -> dict:
    """APIClient.generic's arguments, but the method, for a valid request."""
    headers = {"Authorization": authorization or "", **valid.headers}
    return {
        "path": valid.path,
        "data": json.dumps(valid.body).encode() if valid.body is not None else b"",
        "content_type": valid.content_type,
        "QUERY_STRING": urlencode(valid.query, quote_via=quote, safe=""),
        **{
            "HTTP_" + name.upper().replace("-", "_"): value
            for name, value in headers.items()
            if value
        },
    }


def server_errors(answers, allowed=()):
    """The answers that are 5xx, but for the labels in `allowed`."""
    return {
        label: f"{response.status_code} {response.content[:200]!r}"
        for label, response in answers.items()
        if response.status_code >= 500 and label not in allowed
    }
