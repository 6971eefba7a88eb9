"""Who may call what: every operation and page of the URLconf, per role.

Who may call an operation is written in the schema: shop/openapi.py gives
each operation an `x-audience` (anyone, customer or staff) read from its
view's permission classes, and refuses to build a schema for a view that
says nothing (the default, AllowAny, would fail open) or uses a class whose
audience it does not know. Every operation (shop/api_inventory.py) is
called here as each role, and the answer must be what the audience implies:

    audience   anonymous          customer   staff
    anyone     the view answers   the view   the view
    customer   401                the view   403
    staff      401                403        the view

"The view answers" is anything but 401, 403 or a 5xx. An anonymous caller
gets 403 instead of 401 where no authenticator can ask for credentials (the
schema documents which). "staff" is a staff account without a customer
profile. The pages outside the schema (shop/api_inventory.py:PAGES) are
open to anyone.

The routes are read from the URLconf too, all of them: a route and method
that is neither in the schema nor in PAGES, nor under a prefix that
shop/api_inventory.py:EXCLUDED gives a reason for (Django's admin), fails
`test_every_route_and_method_has_an_expectation`.

The schema's audience comes from the same permission classes it would
check, so a staff endpoint written with AllowAny by mistake would agree
with itself. `INTENDED` is the one list a person writes: who each operation
is for, reviewed with the contract (DESIGN.md's API table). A new operation
fails `test_the_schema_gives_each_operation_its_intended_audience` until it
has a line here; the hostile-input test and the sqlmap pass need none.
"""

import pytest
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from shop import api_inventory as inventory
from shop.openapi import ANYONE, CUSTOMER, STAFF
from tests.accounts.factories import CustomerFactory
from tests.catalog.factories import ProductFactory, StockLevelFactory
from tests.dbs import ALL_DATABASES
from tests.orders.factories import CartFactory, CartItemFactory, OrderFactory
from tests.shop.every_operation import request_kwargs, valid_inputs

# /healthz reads the replica.
pytestmark = [
    pytest.mark.django_db(databases=["default", "replica"]),
    pytest.mark.usefixtures("event_store_in_process"),
]

OK = "allowed"  # neither 401 nor 403 (nor 5xx): the view itself answered
ANONYMOUS = "anonymous"
ROLES = (ANONYMOUS, CUSTOMER, STAFF)
WHERE = "tests/shop/test_permissions.py:path_values"


# Who each operation is for, as the contract says. The only list of
# endpoints in the tests: everything else is read from the schema.
INTENDED = {
    "GET /api/v1/ping/": ANYONE,
    "POST /api/v1/auth/register/": ANYONE,
    "POST /api/v1/auth/token/": ANYONE,
    "GET /api/v1/categories/": ANYONE,
    "GET /api/v1/products/": ANYONE,
    "POST /api/v1/products/": STAFF,
    "GET /api/v1/products/{slug}/": ANYONE,
    "PATCH /api/v1/products/{slug}/": STAFF,
    "PATCH /api/v1/variants/{sku}/": STAFF,
    "GET /api/v1/stock/{sku}/": STAFF,
    "PATCH /api/v1/stock/{sku}/": STAFF,
    "GET /api/v1/catalog/cache/stats/": STAFF,
    # pg_stat_statements (shop/observability/api.py): every role's SQL text.
    "GET /api/v1/ops/top-queries/": STAFF,
    # The reports (analytics/api/views.py): every customer's orders.
    "GET /api/v1/analytics/sales/": STAFF,
    "GET /api/v1/analytics/daily/": STAFF,
    "GET /api/v1/analytics/daily-sales/": STAFF,
    "GET /api/v1/analytics/top-products/": STAFF,
    "GET /api/v1/analytics/customers-without-orders/": STAFF,
    "GET /api/v1/analytics/categories-without-sales/": STAFF,
    "GET /api/v1/analytics/category-rollup/": STAFF,
    "GET /api/v1/analytics/cohorts/": STAFF,
    "GET /api/v1/analytics/bought-together/": STAFF,
    # The MongoDB event log (analytics/event_log.py): every customer's events.
    "GET /api/v1/analytics/events/": STAFF,
    "GET /api/v1/analytics/funnel/": STAFF,
    "GET /api/v1/cart/": CUSTOMER,
    "POST /api/v1/cart/items/": CUSTOMER,
    "PATCH /api/v1/cart/items/{item_id}/": CUSTOMER,
    "DELETE /api/v1/cart/items/{item_id}/": CUSTOMER,
    "POST /api/v1/checkout/": CUSTOMER,
    "GET /api/v1/orders/": CUSTOMER,
    "GET /api/v1/orders/{order_id}/": CUSTOMER,
    "POST /api/v1/orders/{order_id}/cancel/": CUSTOMER,
}


def test_the_schema_gives_each_operation_its_intended_audience():
    declared = {op.label: op.audience for op in inventory.operations()}
    unlisted = sorted(set(declared) - set(INTENDED))
    assert not unlisted, (
        f"New operations {unlisted}: write down who each is for in "
        "tests/shop/test_permissions.py:INTENDED (anyone, customer or staff)."
    )
    wrong = {
        label: f"intended {INTENDED[label]}, the view lets in {audience}"
        for label, audience in declared.items()
        if audience != INTENDED[label]
    }
    assert not wrong, f"permission classes disagree with the contract: {wrong}"
    assert not set(INTENDED) - set(declared), "INTENDED lists operations gone"


def test_every_route_and_method_has_an_expectation():
    found = inventory.coverage()
    assert not found.missing, (
        f"{found.missing} are neither in the OpenAPI schema nor in "
        "shop/api_inventory.py:PAGES nor EXCLUDED. An API view is in the schema "
        "by being a DRF APIView; a page that is no API operation goes in PAGES "
        "with the methods it answers (a function view counts as answering "
        "every method until it is listed); a prefix no check should walk goes "
        "in EXCLUDED, with the reason."
    )
    assert not found.stale, (
        f"PAGES lists routes or methods the URLconf no longer has: {found.stale}"
    )
    assert not found.unused_exclusions, (
        f"EXCLUDED prefixes that match no route: {found.unused_exclusions}"
    )


def expected(operation, role):
    """What `role` gets from `operation`: OK, or the status that refuses it."""
    if operation.audience in (ANYONE, role):
        return OK
    return operation.anonymous_refusal if role == ANONYMOUS else 403


@pytest.fixture
def clients(customer_user, staff_user):
    """Clients that log in the way API clients do: with a token header."""

    def logged_in(user):
        client = APIClient()
        token, _ = Token.objects.get_or_create(user=user)
        client.credentials(HTTP_AUTHORIZATION=f"Token {token.key}")
        return client

    return {
        ANONYMOUS: APIClient(),
        CUSTOMER: logged_in(customer_user),
        STAFF: logged_in(staff_user),
    }


@pytest.fixture
def path_values(customer_user):
    """A row that exists for every path parameter, owned by the customer."""
    level = StockLevelFactory(variant__product=ProductFactory())
    cart = CartFactory(customer=customer_user.customer)
    return inventory.Values(
        WHERE,
        {
            "slug": level.variant.product.slug,
            "sku": level.variant.sku,
            "item_id": CartItemFactory(cart=cart, variant=level.variant).pk,
            "order_id": OrderFactory(customer=customer_user.customer).pk,
        },
    )


def outcome(status):
    return status if status in (401, 403) else OK


# Path parameters that name a customer's own rows: another customer gets a
# 404 for them, never 403 (which would say the row exists) nor the row.
OWNED = {"item_id", "order_id"}


def owned_operations():
    return [
        operation_case(op)
        for op in inventory.operations()
        if op.audience == CUSTOMER
        and OWNED & {i.name for i in op.inputs if i.location == "path"}
    ]


def operation_case(operation):
    # Services that own their transactions (cancelling an order retries its
    # own) refuse to run inside a test's; unsafe methods run as in production.
    marks = []
    if not operation.safe:
        marks = [pytest.mark.django_db(transaction=True, databases=ALL_DATABASES)]
    return pytest.param(operation, marks=marks, id=operation.label)


@pytest.mark.parametrize(
    "operation",
    [operation_case(op) for op in [*inventory.operations(), *inventory.PAGES]],
)
def test_each_role_gets_what_the_matrix_says(operation, clients, path_values):
    path = inventory.path_for(operation, path_values)
    got = {}
    for role in ROLES:
        response = clients[role].generic(
            operation.method, path, "{}", content_type="application/json"
        )
        assert response.status_code < 500, (role, response.content[:300])
        got[role] = outcome(response.status_code)

    want = {role: expected(operation, role) for role in ROLES}
    assert got == want, f"{operation.method} {path} ({operation.audience}): {got}"


@pytest.mark.parametrize("operation", owned_operations())
def test_another_customers_rows_are_not_found(operation):
    inputs = valid_inputs()  # the rows of their customer
    stranger = CustomerFactory().user
    token = Token.objects.create(user=stranger).key
    valid = inventory.valid_request(operation, inputs.values)

    response = APIClient().generic(
        operation.method, **request_kwargs(valid, f"Token {token}")
    )

    assert response.status_code == 404, (operation.label, response.content[:300])
    assert response.json()["code"] == "not_found"
