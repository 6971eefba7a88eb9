"""One inventory of the API, read from its schema (shop/api_inventory.py).

The permission matrix (tests/shop/test_permissions.py), the hostile inputs
(tests/shop/test_hostile_inputs.py) and the sqlmap targets
(scripts/security_sqlmap.py) all derive from it. These tests prove the
point with a throw-away view in a URLconf of its own: it shows up in all
three without anyone editing a list, and a view that does not say who may
call it stops the schema from being built at all. A route outside the
schema (a webhook, a plain Django view) is reported by the walk over the
whole URLconf until it is one of PAGES or excluded with a reason.
"""

import importlib
import sys
from pathlib import Path

import pytest
from django.core.exceptions import ImproperlyConfigured
from django.http import HttpResponse
from django.test import override_settings
from django.urls import include, path
from django.views import View
from django.views.decorators.http import require_POST
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers, viewsets
from rest_framework.permissions import AllowAny, IsAdminUser, IsAuthenticated
from rest_framework.response import Response
from rest_framework.routers import SimpleRouter
from rest_framework.views import APIView

from shop import api_inventory as inventory
from shop import urls as shop_urls
from shop.openapi import ANYONE, AUDIENCE_EXTENSION, CUSTOMER, STAFF
from tests.shop.test_hostile_inputs import hostile_requests
from tests.shop.test_permissions import ANONYMOUS, OK, ROLES, expected

SCRIPTS = Path(__file__).resolve().parents[2] / "scripts"
WIDGET = "/api/v1/widgets/{widget_id}/"


class WidgetInput(serializers.Serializer):
    colour = serializers.CharField()
    parts = serializers.ListField(child=serializers.IntegerField())


class WidgetApi(APIView):
    permission_classes = [IsAdminUser]

    @extend_schema(
        request=WidgetInput,
        parameters=[OpenApiParameter("shade", str)],
        responses={200: WidgetInput},
    )
    def patch(self, request, widget_id):
        return Response({})


class OpenWidgetApi(APIView):
    permission_classes = [AllowAny]

    @extend_schema(responses={200: WidgetInput})
    def get(self, request):
        return Response({})


class LoggedInWidgetApi(OpenWidgetApi):
    permission_classes = [IsAuthenticated]


class SilentWidgetApi(APIView):
    """Says nothing about permissions: the default, AllowAny, would apply."""

    @extend_schema(responses={200: WidgetInput})
    def get(self, request):
        return Response({})


class URLconf:
    """A URLconf for override_settings(ROOT_URLCONF=...): hashable, unlike a list."""

    def __init__(self, urlpatterns):
        self.urlpatterns = urlpatterns


def urlconf(*views):
    """The shop's URLconf with `views` added under /api/v1/widgets/."""
    extra = [
        path("api/v1/widgets/<int:widget_id>/", WidgetApi.as_view(), name="widget"),
        *(path(f"api/v1/widgets/{n}/", v.as_view()) for n, v in enumerate(views)),
    ]
    # Before the catch-all JSON 404 at the end.
    return URLconf([*extra, *shop_urls.urlpatterns])


@pytest.fixture
def widget_schema():
    with override_settings(ROOT_URLCONF=urlconf(OpenWidgetApi)):
        schema = inventory.generate_schema()
        yield schema, inventory.coverage(inventory.operations(schema))


@pytest.fixture(scope="module")
def sqlmap():
    """scripts/security_sqlmap.py, importable with its sibling modules."""
    sys.path.insert(0, str(SCRIPTS))
    try:
        yield importlib.import_module("security_sqlmap")
    finally:
        sys.path.remove(str(SCRIPTS))


def widget(schema):
    (operation,) = [o for o in inventory.operations(schema) if o.path == WIDGET]
    return operation


def test_a_new_view_is_in_the_permission_matrix(widget_schema):
    schema, coverage = widget_schema
    operation = widget(schema)
    assert operation.audience == STAFF
    matrix = {role: expected(operation, role) for role in ROLES}
    assert matrix == {ANONYMOUS: 401, CUSTOMER: 403, STAFF: OK}
    assert coverage.missing == [] and coverage.stale == []


def test_a_new_view_gets_hostile_values_in_each_of_its_inputs(widget_schema):
    operation = widget(widget_schema[0])
    values = inventory.Values("here", {"widget_id": 7, "colour": "red", "parts": 1})
    cases = hostile_requests(operation, values, "Token x")
    attacked = {what.split("=")[0] for what, _, _ in cases}
    assert attacked >= {
        "path widget_id",
        "?shade",
        "?format",
        "header Authorization",
        "field colour",
        "field parts",
        "field parts[]",
        "body b'{not json'",
    }
    # The valid request the cases start from: the optional ?shade is left out.
    valid = inventory.valid_request(operation, values)
    assert (valid.path, valid.query) == ("/api/v1/widgets/7/", {})
    assert valid.body == {"colour": "red", "parts": [1]}


def test_a_new_view_is_a_sqlmap_target(widget_schema, sqlmap):
    schema, _ = widget_schema
    with override_settings(ROOT_URLCONF=urlconf(OpenWidgetApi)):
        names = inventory.route_names()
    planned = {a.name: a for a in sqlmap.attacks(inventory.operations(schema), names)}
    attack = planned["widget"]
    assert attack.operation.path == WIDGET
    # The path's and the query's values marked in the URL, the body by name.
    assert attack.expect == ("#1*", "#2*", "colour", "parts")
    values = inventory.Values("here", {"widget_id": 7, "shade": "red"})
    values |= {"colour": "blue", "parts": 3}
    target = sqlmap.target("http://shop", attack, values, "staff-token")
    assert target.url == "http://shop/api/v1/widgets/7*/?shade=red*"
    assert (target.method, target.data) == ("PATCH", {"colour": "blue", "parts": [3]})


def test_a_value_nobody_provided_says_where_to_add_it(widget_schema):
    operation = widget(widget_schema[0])
    values = inventory.Values("tests/x.py:values", {"widget_id": 7, "colour": "red"})
    with pytest.raises(inventory.MissingValue, match=r"'parts'.*tests/x.py:values"):
        inventory.valid_request(operation, values)


def test_a_permission_class_without_an_audience_stops_the_schema():
    refused = pytest.raises(ImproperlyConfigured, match="IsAuthenticated.*audience")
    with override_settings(ROOT_URLCONF=urlconf(LoggedInWidgetApi)), refused:
        inventory.generate_schema()


def test_a_view_relying_on_the_default_permission_stops_the_schema():
    refused = pytest.raises(ImproperlyConfigured, match="SilentWidgetApi.*may call")
    with override_settings(ROOT_URLCONF=urlconf(SilentWidgetApi)), refused:
        inventory.generate_schema()


def every_method(route):
    return sorted((route, method) for method in inventory.HTTP_METHODS)


def test_a_route_outside_the_schema_and_the_pages_is_reported():
    urls = urlconf()
    urls.urlpatterns.insert(0, path("api/v1/plain/", lambda request: None))
    with override_settings(ROOT_URLCONF=urls):
        found = inventory.coverage(inventory.operations(inventory.generate_schema()))
    # A function view keeps no record of its methods: it counts as all of them.
    assert found.missing == every_method("api/v1/plain/")


@require_POST
def webhook(request):
    return HttpResponse(status=204)


def test_a_new_top_level_route_is_missing_until_it_is_a_page_or_excluded():
    urls = urlconf()
    urls.urlpatterns.insert(0, path("webhooks/x", webhook))
    with override_settings(ROOT_URLCONF=urls):
        schema_operations = inventory.operations(inventory.generate_schema())
        found = inventory.coverage(schema_operations)
        # require_POST leaves no record either: until PAGES lists the route
        # with its methods, every method is missing.
        assert found.missing == every_method("webhooks/x")
        as_page = inventory.page("/webhooks/x", "webhooks/x", methods=("POST",))
        paged = inventory.coverage(schema_operations, (*inventory.PAGES, *as_page))
        excluded = {**inventory.EXCLUDED, "webhooks/": "the payment provider's"}
        left_out = inventory.coverage(schema_operations, excluded=excluded)
    assert paged == inventory.Coverage()
    assert left_out == inventory.Coverage()


def test_pages_and_exclusions_that_match_no_route_are_reported():
    schema_operations = inventory.operations()
    gone = inventory.page("/api/gone/", "api/gone/")
    # A class-based view's methods are its own: the docs page has no POST.
    no_post = inventory.page("/api/docs/", "api/docs/", methods=("POST",))
    found = inventory.coverage(
        schema_operations,
        (*inventory.PAGES, *gone, *no_post),
        excluded={**inventory.EXCLUDED, "static/": "served by the web server"},
    )
    assert found.missing == []
    assert found.stale == ["POST api/docs/", "GET api/gone/"]
    assert found.unused_exclusions == ["static/"]


class FormPage(View):
    def get(self, request):
        return HttpResponse()

    def post(self, request):
        return HttpResponse()


class GadgetViewSet(viewsets.ViewSet):
    permission_classes = [AllowAny]
    # The router binds PUT to update; the view answers it with a 405.
    http_method_names = ["get", "patch", "options"]

    @extend_schema(responses={200: WidgetInput})
    def list(self, request):
        return Response([])

    @extend_schema(
        parameters=[OpenApiParameter("pk", int, OpenApiParameter.PATH)],
        responses={200: WidgetInput},
    )
    def retrieve(self, request, pk):
        return Response({})

    @extend_schema(
        parameters=[OpenApiParameter("pk", int, OpenApiParameter.PATH)],
        request=WidgetInput,
        responses={200: WidgetInput},
    )
    def partial_update(self, request, pk):
        return Response({})

    def update(self, request, pk):
        return Response({})


def test_a_routes_methods_are_read_from_its_view():
    router = SimpleRouter()
    router.register("gadgets", GadgetViewSet, basename="gadget")
    urls = urlconf()
    urls.urlpatterns[:0] = [
        path("api/v1/", include(router.urls)),
        # as_view's http_method_names narrow the class's.
        path("api/v1/form/", FormPage.as_view(http_method_names=["get", "head"])),
    ]
    with override_settings(ROOT_URLCONF=urls):
        routes = inventory.url_routes()
        found = inventory.coverage(inventory.operations(inventory.generate_schema()))
    assert routes["api/v1/^gadgets/$"] == ("GET",)
    assert routes["api/v1/^gadgets/(?P<pk>[^/.]+)/$"] == ("GET", "PATCH")
    assert routes["api/v1/form/"] == ("GET",)
    assert routes["api/v1/widgets/<int:widget_id>/"] == ("PATCH",)
    # The ViewSet's routes are the schema's paths; the plain Django view is not.
    assert found.missing == [("api/v1/form/", "GET")]


def test_every_exclusion_says_why():
    assert inventory.EXCLUDED, "admin/ at least: Django's own admin"
    for prefix, reason in inventory.EXCLUDED.items():
        assert prefix.endswith("/") and len(reason.split()) >= 5, prefix


def test_a_page_says_why_sqlmap_leaves_a_parameter_alone():
    with pytest.raises(ValueError, match="say why"):
        inventory.page("/p/", "p/", query=("q",), not_attacked={"q": " "})
    with pytest.raises(ValueError, match="no query parameter"):
        inventory.page("/p/", "p/", not_attacked={"q": "because"})


def test_operations_open_to_anyone_say_so_in_their_security_too():
    for operation_path, item in inventory.api_schema()["paths"].items():
        for method, operation in item.items():
            public = {} in operation.get("security", [{}])
            assert (operation[AUDIENCE_EXTENSION] == ANYONE) == public, (
                method,
                operation_path,
            )


def test_bodies_are_built_from_values_by_field_name():
    (checkout,) = [o for o in inventory.operations() if o.path == "/api/v1/checkout/"]
    values = inventory.Values(
        "here",
        {
            "Idempotency-Key": lambda operation: f"key-for-{operation.method}",
            "line1": "1 Road",
            "line2": "",
            "city": "Town",
            "postal_code": "1",
            "country": "US",
            "payment_token": "tok_ok",
            "coupon": "X",
        },
    )
    valid = inventory.valid_request(checkout, values)
    assert valid.headers == {"Idempotency-Key": "key-for-POST"}
    assert valid.body == {
        "shipping_address": {
            "line1": "1 Road",
            "line2": "",
            "city": "Town",
            "postal_code": "1",
            "country": "US",
        },
        "payment_token": "tok_ok",
        "coupon": "X",
    }


# What scripts/security_sqlmap.py attacked when its targets were a list
# written by hand (31 parameters, as its chapter counted them, in 12
# requests): the derived plan must still cover every one.
HAND_WRITTEN_TARGETS = {
    *(
        ("GET", "/api/v1/products/", "query", name)
        for name in (
            "category",
            "search",
            "min_price",
            "max_price",
            "in_stock",
            "ordering",
            "cursor",
            "page_size",
        )
    ),
    ("GET", "/api/v1/products/{slug}/", "path", "slug"),
    ("POST", "/api/v1/auth/register/", "body", "email"),
    ("POST", "/api/v1/auth/register/", "body", "password"),
    ("POST", "/api/v1/auth/token/", "body", "email"),
    ("POST", "/api/v1/auth/token/", "body", "password"),
    ("GET", "/api/v1/cart/", "header", "Authorization"),
    ("GET", "/api/v1/stock/{sku}/", "path", "sku"),
    ("PATCH", "/api/v1/stock/{sku}/", "body", "quantity_on_hand"),
    ("PATCH", "/api/v1/stock/{sku}/", "body", "warehouse"),
    ("POST", "/api/v1/cart/items/", "body", "sku"),
    ("POST", "/api/v1/cart/items/", "body", "quantity"),
    ("PATCH", "/api/v1/cart/items/{item_id}/", "path", "item_id"),
    ("PATCH", "/api/v1/cart/items/{item_id}/", "body", "quantity"),
    ("GET", "/api/v1/orders/{order_id}/", "path", "order_id"),
    *(
        ("POST", "/api/v1/checkout/", "body", name)
        for name in (
            "line1",
            "line2",
            "city",
            "postal_code",
            "country",
            "payment_token",
            "coupon",
        )
    ),
    ("POST", "/api/v1/checkout/", "header", "Idempotency-Key"),
}


def test_the_sqlmap_plan_covers_what_the_hand_written_targets_did(sqlmap):
    pairs = set().union(*(attack.pairs() for attack in sqlmap.plan()))
    assert HAND_WRITTEN_TARGETS - pairs == set()


def test_the_sqlmap_plan_attacks_each_page_query_parameter_or_says_why_not(sqlmap):
    planned = {a.name: a for a in sqlmap.plan()}
    attacked = {
        (path, name)
        for attack in planned.values()
        for _, path, where, name in attack.pairs()
        if where == inventory.QUERY
    }
    for page in inventory.PAGES:
        left_alone = dict(page.not_attacked)
        for inp in page.inputs_in(inventory.QUERY):
            # Either attacked, or left alone for a reason: never both.
            assert ((page.path, inp.name) in attacked) != (inp.name in left_alone)
    schema = planned["schema"]
    assert (schema.operation.path, schema.expect) == ("/api/schema/", ("lang",))
    # The page's other parameter (version, refused) is not sent at all.
    values = inventory.Values("here", {"lang": "en"})
    target = sqlmap.target("http://shop", schema, values, None)
    assert target.url == "http://shop/api/schema/?lang=en"
    argv = sqlmap.command(target, Path("/tmp"))
    assert argv[argv.index("-p") + 1] == "lang"


def test_the_sqlmap_plan_keeps_the_options_its_requests_need(sqlmap):
    planned = {a.name: a for a in sqlmap.plan()}
    # A new key for every payload, else checkout replays the stored answer.
    assert planned["checkout"].tamper == sqlmap.TAMPER
    key = planned["checkout-idempotency-key"]
    assert key.expect == ("Idempotency-Key #1*",)
    assert set(key.skip) == set(planned["checkout"].expect)
    # The token header once, where every changed token is a 401.
    (auth,) = [a for a in planned.values() if a.header and a.header.credential]
    assert (auth.name, auth.ignore_code) == ("auth-header", 401)
    values = inventory.Values("here", {})
    target = sqlmap.target("http://shop", auth, values, "abc")
    assert target.headers == {"Authorization": "Token abc*"}
    assert "--ignore-code=401" in target.extra
