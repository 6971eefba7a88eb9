"""Who may call what: every route under /api/ and /healthz, for every role.

The routes are read from the URLconf itself, so a new route or method that
is not in EXPECTED fails `test_every_route_and_method_has_an_expectation`
until someone writes down who may call it.
"""

import re

import pytest
from django.urls import URLResolver, get_resolver
from rest_framework.test import APIClient

from tests.catalog.factories import ProductFactory, StockLevelFactory
from tests.dbs import ALL_DATABASES
from tests.orders.factories import CartFactory, CartItemFactory, OrderFactory

# /healthz reads the replica.
pytestmark = pytest.mark.django_db(databases=["default", "replica"])

OK = "allowed"  # neither 401 nor 403 (nor 5xx): the view itself answered

# (route as written in the URLconf, method): (anonymous, customer, staff).
# "staff" is a staff account without a customer profile.
EXPECTED = {
    ("healthz", "GET"): (OK, OK, OK),
    ("api/schema/", "GET"): (OK, OK, OK),
    ("api/docs/", "GET"): (OK, OK, OK),
    ("api/v1/auth/register/", "POST"): (OK, OK, OK),
    ("api/v1/auth/token/", "POST"): (OK, OK, OK),
    ("api/v1/categories/", "GET"): (OK, OK, OK),
    ("api/v1/products/", "GET"): (OK, OK, OK),
    ("api/v1/products/", "POST"): (401, 403, OK),
    ("api/v1/products/<slug:slug>/", "GET"): (OK, OK, OK),
    ("api/v1/stock/<sku:sku>/", "GET"): (401, 403, OK),
    ("api/v1/stock/<sku:sku>/", "PATCH"): (401, 403, OK),
    ("api/v1/cart/", "GET"): (401, OK, 403),
    ("api/v1/cart/items/", "POST"): (401, OK, 403),
    ("api/v1/cart/items/<int:item_id>/", "PATCH"): (401, OK, 403),
    ("api/v1/cart/items/<int:item_id>/", "DELETE"): (401, OK, 403),
    ("api/v1/checkout/", "POST"): (401, OK, 403),
    ("api/v1/orders/", "GET"): (401, OK, 403),
    ("api/v1/orders/<int:order_id>/", "GET"): (401, OK, 403),
    ("api/v1/orders/<int:order_id>/cancel/", "POST"): (401, OK, 403),
    ("^api/", "GET"): (OK, OK, OK),  # the JSON 404 for every other API path
}

ROLES = ("anonymous", "customer", "staff")
HTTP_METHODS = ("get", "post", "put", "patch", "delete")
# Function views (healthz, the API's 404) declare no methods; GET stands in.
FUNCTION_VIEW_METHODS = ("GET",)


def _walk(resolver, prefix=""):
    for pattern in resolver.url_patterns:
        route = prefix + str(pattern.pattern)
        if isinstance(pattern, URLResolver):
            yield from _walk(pattern, route)
        else:
            yield route, pattern.callback


def _methods(callback):
    view_class = getattr(callback, "view_class", None)
    if view_class is None:
        return FUNCTION_VIEW_METHODS
    return tuple(m.upper() for m in HTTP_METHODS if hasattr(view_class, m))


def api_routes():
    """Every (route, method) the URLconf serves under /api/ and /healthz."""
    return {
        (route, method)
        for route, callback in _walk(get_resolver())
        if route.lstrip("^").startswith("api/") or route == "healthz"
        for method in _methods(callback)
    }


def test_every_route_and_method_has_an_expectation():
    missing = sorted(api_routes() - EXPECTED.keys())
    stale = sorted(EXPECTED.keys() - api_routes())
    assert not missing, (
        f"No permission expectation for {missing}: add each to EXPECTED in "
        "tests/shop/test_permissions.py as (anonymous, customer, staff)."
    )
    assert not stale, f"EXPECTED lists routes the URLconf no longer has: {stale}"


@pytest.fixture
def clients(customer_user, staff_user):
    """Clients that log in the way API clients do: with a token header."""
    from rest_framework.authtoken.models import Token

    def logged_in(user):
        client = APIClient()
        token, _ = Token.objects.get_or_create(user=user)
        client.credentials(HTTP_AUTHORIZATION=f"Token {token.key}")
        return client

    return {
        "anonymous": APIClient(),
        "customer": logged_in(customer_user),
        "staff": logged_in(staff_user),
    }


@pytest.fixture
def path_values(customer_user):
    """A row that exists for every path parameter, owned by the customer."""
    level = StockLevelFactory(variant__product=ProductFactory())
    cart = CartFactory(customer=customer_user.customer)
    return {
        "slug": level.variant.product.slug,
        "sku": level.variant.sku,
        "item_id": CartItemFactory(cart=cart, variant=level.variant).pk,
        "order_id": OrderFactory(customer=customer_user.customer).pk,
    }


def concrete_path(route, values):
    if route == "^api/":
        return "/api/v1/nowhere/"
    return "/" + re.sub(r"<(?:\w+:)?(\w+)>", lambda m: str(values[m.group(1)]), route)


def outcome(status):
    return status if status in (401, 403) else OK


# Cancelling retries its own transaction and refuses to run inside a test's.
TRANSACTIONAL = {("api/v1/orders/<int:order_id>/cancel/", "POST")}


def matrix_case(route, method):
    marks = []
    if (route, method) in TRANSACTIONAL:
        marks = [pytest.mark.django_db(transaction=True, databases=ALL_DATABASES)]
    return pytest.param(route, method, marks=marks, id=f"{method} {route}")


@pytest.mark.parametrize(
    "route, method", [matrix_case(*case) for case in sorted(EXPECTED)]
)
def test_each_role_gets_what_the_matrix_says(route, method, clients, path_values):
    path = concrete_path(route, path_values)
    got = {}
    for role in ROLES:
        response = clients[role].generic(
            method, path, "{}", content_type="application/json"
        )
        assert response.status_code < 500, (role, response.content[:300])
        got[role] = outcome(response.status_code)

    assert tuple(got[role] for role in ROLES) == EXPECTED[route, method], (
        f"{method} {path}: {got}"
    )
