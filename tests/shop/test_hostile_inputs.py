"""Hostile values in every parameter of every endpoint.

Each query parameter, path parameter, JSON body field (nested ones too),
whole body and the Idempotency-Key and Authorization headers gets SQL
injection strings, NUL bytes, 100k-character strings, awkward Unicode,
numbers out of range and JSON of the wrong type. The API must answer every
one with a 2xx or a 4xx in the error shape {code, detail} (never a 5xx),
and the database must be as it was: no table dropped, and no row count
changed but in the tables the endpoint writes anyway.

One test per endpoint; its failure lists every (parameter, value) that
misbehaved, not only the first.
"""

import json
import uuid
from dataclasses import dataclass, field
from urllib.parse import quote

import pytest
import yaml
from django.db import connection
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from orders.models import CartItem
from tests.accounts.factories import CustomerFactory, UserFactory
from tests.catalog.factories import (
    CategoryFactory,
    StockLevelFactory,
    WarehouseFactory,
)
from tests.dbs import ALL_DATABASES, as_staff
from tests.orders.factories import (
    CartFactory,
    CartItemFactory,
    CouponFactory,
    OrderFactory,
)

# /healthz reads the replica.
pytestmark = pytest.mark.django_db(databases=["default", "replica"])

SQL_INJECTIONS = [
    "' OR 1=1 --",
    "1; DROP TABLE catalog_product",
    "') UNION SELECT password FROM accounts_user --",
    "%' AND pg_sleep(5) IS NULL --",
]
# As strings: for query strings, paths, headers and JSON string fields.
HOSTILE_TEXT = [
    *SQL_INJECTIONS,
    "\x00",
    "A\x00B",
    "x" * 100_000,
    "\u202eexe.txt\u202c",  # right-to-left override
    "\U0001f6d2\U0001f4a5\U0001f469\u200d\U0001f467",  # emoji, a ZWJ sequence
    "Z\u0351\u0358\u0300\u0301\u0327" * 40,  # stacked combining marks
    "",
    " ",
    str(10**30),
    "-1",
    "1e308",
    "NaN",
    "Infinity",
    "../../etc/passwd",
    "<script>alert(1)</script>",
    "%s%n{0}{{7*7}}",
]
# As raw JSON text, put in place of one field's value.
DEEP_LIST = "[" * 1000 + "]" * 1000
HOSTILE_JSON = [json.dumps(text) for text in HOSTILE_TEXT] + [
    '"\\ud800"',  # a lone surrogate: valid JSON, not encodable as UTF-8
    str(10**30),
    "-1",
    "1e308",
    "-1e308",
    "1e999",  # Python's json reads it as float("inf")
    "NaN",
    "Infinity",
    "0.5",
    "true",
    "null",
    "[]",
    '["a", "b"]',
    "{}",
    '{"$ne": null}',
    DEEP_LIST,
]
# Whole request bodies, sent as application/json.
HOSTILE_BODIES = [
    b"",
    b"{not json",
    b"\x00",
    b"\xff\xfe\xfd",
    b"[]",
    b'[{"sku": "A"}]',
    b'"just a string"',
    b"null",
    b"42",
    b"NaN",
    DEEP_LIST.encode(),
    b'{"a":' * 1000 + b"1" + b"}" * 1000,
    b"x" * 100_000,
]
# Row counts that no hostile request may change (Endpoint.writes excepted).
GUARDED_TABLES = [
    "accounts_user",
    "authtoken_token",
    "catalog_category",
    "catalog_product",
    "catalog_product_variant",
    "catalog_stock_level",
    "orders_cart_item",
    "orders_order",
    "orders_idempotency_key",
]
# DRF reads ?format= on every view to pick a renderer (URL_FORMAT_OVERRIDE).
EVERY_ENDPOINT_QUERY = ("format",)
SENTINEL = "__hostile__"
ROLE_TOKENS = {"anonymous": "", "customer": "{auth}", "staff": "{staff_auth}"}
PASSWORD = "Sh0p-test-pass"  # UserFactory's


@dataclass(frozen=True)
class Endpoint:
    method: str
    path: str  # "{name}" marks a path parameter
    role: str  # "anonymous", "customer" or "staff"
    query: tuple = ()
    body: dict | None = None  # a valid body; "{name}" strings are filled in
    headers: dict = field(default_factory=dict)
    writes: frozenset = frozenset()  # tables whose row counts may change
    # Token: no hostile body or field value may ever log anyone in.
    never_succeeds: bool = False
    # Services that retry their own transaction refuse to run inside a test's.
    transactional: bool = False
    # Put a line back into the customer's cart before each body or field case,
    # so that accepted values go all the way into an order.
    refill_cart: bool = False


ENDPOINTS = {
    "register": Endpoint(
        "POST",
        "/api/v1/auth/register/",
        "anonymous",
        body={"email": "{email}", "password": "Correct-horse-42"},
    ),
    "token": Endpoint(
        "POST",
        "/api/v1/auth/token/",
        "anonymous",
        body={"email": "{email}", "password": PASSWORD},
        # Hostile query values leave the (right) credentials as they are.
        writes=frozenset({"authtoken_token"}),
        never_succeeds=True,
    ),
    "healthz": Endpoint("GET", "/healthz", "anonymous"),
    "schema": Endpoint("GET", "/api/schema/", "anonymous", query=("lang",)),
    "categories": Endpoint("GET", "/api/v1/categories/", "anonymous"),
    "product-list": Endpoint(
        "GET",
        "/api/v1/products/",
        "anonymous",
        query=(
            "category",
            "search",
            "min_price",
            "max_price",
            "in_stock",
            "ordering",
            "cursor",
            "page_size",
        ),
    ),
    "product-create": Endpoint(
        "POST",
        "/api/v1/products/",
        "staff",
        body={
            "name": "Lamp",
            "category": "{category}",
            "description": "Warm.",
            "variants": [
                {"sku": "{new_sku}", "name": "Small", "price": "9.99", "stock": 2}
            ],
        },
        writes=frozenset(
            {"catalog_product", "catalog_product_variant", "catalog_stock_level"}
        ),
    ),
    "product-detail": Endpoint("GET", "/api/v1/products/{slug}/", "anonymous"),
    "stock-get": Endpoint("GET", "/api/v1/stock/{sku}/", "staff", query=("warehouse",)),
    "stock-patch": Endpoint(
        "PATCH",
        "/api/v1/stock/{sku}/",
        "staff",
        body={"quantity_on_hand": 7, "warehouse": "MAIN"},
    ),
    "cart": Endpoint(
        "GET", "/api/v1/cart/", "customer", headers={"Authorization": "{auth}"}
    ),
    "cart-item-add": Endpoint(
        "POST",
        "/api/v1/cart/items/",
        "customer",
        body={"sku": "{sku}", "quantity": 1},
        writes=frozenset({"orders_cart_item"}),
    ),
    "cart-item-patch": Endpoint(
        "PATCH", "/api/v1/cart/items/{item_id}/", "customer", body={"quantity": 2}
    ),
    "cart-item-delete": Endpoint(
        "DELETE",
        "/api/v1/cart/items/{item_id}/",
        "customer",
        # With a hostile query value the line itself is still deleted, once.
        writes=frozenset({"orders_cart_item"}),
    ),
    "checkout": Endpoint(
        "POST",
        "/api/v1/checkout/",
        "customer",
        body={
            "shipping_address": {
                "line1": "1 Test Street",
                "line2": "Flat 2",
                "city": "Testville",
                "postal_code": "12345",
                "country": "US",
            },
            "payment_token": "tok_ok",
            "coupon": "SAVE10",
        },
        headers={"Idempotency-Key": "{new_key}"},
        writes=frozenset(
            {"orders_order", "orders_idempotency_key", "orders_cart_item"}
        ),
        transactional=True,
        refill_cart=True,
    ),
    "order-list": Endpoint(
        "GET", "/api/v1/orders/", "customer", query=("cursor", "page_size")
    ),
    "order-detail": Endpoint("GET", "/api/v1/orders/{order_id}/", "customer"),
    "order-cancel": Endpoint(
        "POST", "/api/v1/orders/{order_id}/cancel/", "customer", transactional=True
    ),
}


class Rows(dict):
    """Values of existing rows for paths and bodies; new_* are fresh each time."""

    def __missing__(self, name):
        if name == "new_sku":
            return f"HOSTILE-{uuid.uuid4().hex[:12].upper()}"
        if name == "new_key":
            return str(uuid.uuid4())
        raise KeyError(name)


def fill(template, rows):
    if isinstance(template, str):
        return template.format_map(rows)
    if isinstance(template, dict):
        return {k: fill(v, rows) for k, v in template.items()}
    if isinstance(template, list):
        return [fill(v, rows) for v in template]
    return template


def field_paths(value, prefix=()):
    """Every field of a body, containers and their members, as key paths."""
    items = value.items() if isinstance(value, dict) else enumerate(value)
    for key, member in items:
        yield (*prefix, key)
        if isinstance(member, dict | list):
            yield from field_paths(member, (*prefix, key))


def json_with(body, path, raw):
    """`body` as JSON text with the field at `path` replaced by raw JSON."""
    target = body
    for key in path[:-1]:
        target = target[key]
    target[path[-1]] = SENTINEL
    return json.dumps(body).replace(json.dumps(SENTINEL), raw).encode()


def hostile_requests(endpoint, rows):
    """(what was sent, whether it is in the body, kwargs for APIClient.generic)."""
    path_names = [n for n in rows if "{" + n + "}" in endpoint.path]
    query_names = (*endpoint.query, *EVERY_ENDPOINT_QUERY)

    def request(path=None, query="", body=None, headers=(), content_type=None):
        """A valid request to the endpoint with one part of it replaced."""
        if body is None and endpoint.body is not None:
            body = json.dumps(fill(endpoint.body, rows)).encode()
        all_headers = {"Authorization": ROLE_TOKENS[endpoint.role].format_map(rows)}
        all_headers |= fill(endpoint.headers, rows) | dict(headers)
        return {
            "path": path or fill(endpoint.path, rows),
            "data": body or b"",
            "content_type": content_type or "application/json",
            "QUERY_STRING": query,
            **{
                "HTTP_" + name.upper().replace("-", "_"): value
                for name, value in all_headers.items()
                if value
            },
        }

    for text in HOSTILE_TEXT:
        shown = repr(text[:40])
        for name in query_names:
            query = f"{name}={quote(text, safe='')}"
            yield f"?{name}={shown}", False, request(query=query)
        for name in path_names:
            path = endpoint.path.replace("{" + name + "}", quote(text, safe=""))
            yield f"path {name}={shown}", False, request(path=fill(path, rows))
        # A WSGI server hands Django header bytes decoded as Latin-1.
        as_sent = text.encode().decode("latin-1")
        for name in endpoint.headers:
            header = f"Token {as_sent}" if name == "Authorization" else as_sent
            yield f"header {name}={shown}", False, request(headers={name: header})
    for name in query_names:
        yield f"?{name} twice", False, request(query=f"{name}=1&{name}=2")
    if endpoint.body is None:
        return
    for path in field_paths(endpoint.body):
        for raw in HOSTILE_JSON:
            body = json_with(fill(endpoint.body, rows), path, raw)
            yield f"field {path}={raw[:40]!r}", True, request(body=body)
    for raw in HOSTILE_BODIES:
        yield f"body {raw[:40]!r}", True, request(body=raw)
    for content_type in ("text/plain", "multipart/form-data; boundary=x"):
        yield f"body as {content_type}", True, request(content_type=content_type)


def row_counts():
    # As staff: row-level security would hide every customer's rows, and a
    # count of nothing cannot change.
    with as_staff(), connection.cursor() as cursor:
        counts = {}
        for table in GUARDED_TABLES:
            cursor.execute(f'SELECT count(*) FROM "{table}"')  # names from above
            counts[table] = cursor.fetchone()[0]
        return counts


def problem(response, endpoint, in_body):
    """What is wrong with the answer to a hostile request, or None."""
    status = response.status_code
    if status >= 500:
        exc = getattr(response, "exc_info", None)
        cause = repr(exc[1])[:200] if exc else response.content[:200]
        return f"{status}: {cause}"
    if endpoint.never_succeeds and in_body and status < 400:
        return f"{status}: a hostile value was accepted: {response.content[:200]}"
    if status >= 400:
        try:
            body = error_body(response)
        except ValueError:
            return f"{status} without a JSON body: {response.content[:200]}"
        if not isinstance(body, dict) or not {"code", "detail"} <= set(body):
            return f"{status} without code and detail: {str(body)[:200]}"
    return None


def error_body(response):
    content_type = response.get("Content-Type", "")
    if "openapi" in content_type and "json" not in content_type:
        # The schema view renders everything, its errors too, as YAML.
        return yaml.safe_load(response.content)
    return response.json()


@pytest.fixture
def rows():
    """One of everything, and the customer's cart with a line in it."""
    WarehouseFactory()
    customer = CustomerFactory()
    staff = UserFactory(is_staff=True)
    level = StockLevelFactory(quantity_on_hand=1_000_000)
    item = CartItemFactory(cart=CartFactory(customer=customer), variant=level.variant)
    CouponFactory(code="SAVE10")
    return Rows(
        email=customer.user.email,
        customer=customer,
        cart_line=(item.cart, item.variant),
        category=CategoryFactory().slug,
        slug=level.variant.product.slug,
        sku=level.variant.sku,
        item_id=item.pk,
        # Failed, not pending: a pending order would hold up every checkout.
        order_id=OrderFactory(customer=customer, status="failed").pk,
        auth=f"Token {Token.objects.create(user=customer.user).key}",
        staff_auth=f"Token {Token.objects.create(user=staff).key}",
    )


def refill_cart(rows):
    cart, variant = rows["cart_line"]
    with as_staff():
        CartItem.objects.get_or_create(
            cart=cart, variant=variant, defaults={"quantity": 1}
        )


def endpoint_case(name):
    marks = []
    if ENDPOINTS[name].transactional:
        marks = [pytest.mark.django_db(transaction=True, databases=ALL_DATABASES)]
    return pytest.param(name, marks=marks, id=name)


@pytest.mark.parametrize("name", [endpoint_case(name) for name in ENDPOINTS])
def test_hostile_values_never_cause_a_5xx_or_harm_the_database(name, rows):
    endpoint = ENDPOINTS[name]
    # Logged in by the Authorization header each request sends (a hostile one
    # included), never by APIClient.credentials(), which would override it.
    client = APIClient(raise_request_exception=False)
    before = row_counts()

    failures = []
    for sent, in_body, kwargs in hostile_requests(endpoint, rows):
        if endpoint.refill_cart and in_body:
            refill_cart(rows)
        response = client.generic(endpoint.method, **kwargs)
        if (why := problem(response, endpoint, in_body)) is not None:
            failures.append(f"{endpoint.method} {endpoint.path} {sent}: {why}")

    assert not failures, f"{len(failures)} bad answers:\n" + "\n".join(failures[:40])
    with connection.cursor() as cursor:
        cursor.execute("SELECT to_regclass('catalog_product')")
        assert cursor.fetchone()[0] is not None, "catalog_product is gone"
    after = row_counts()
    for table in GUARDED_TABLES:
        if table not in endpoint.writes:
            assert after[table] == before[table], table
    customer = rows["customer"].user
    customer.refresh_from_db()
    assert customer.check_password(PASSWORD), "the customer's password changed"
