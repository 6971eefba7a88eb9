"""The schema promises what the API answers (shop/openapi.py), errors included.

`make security` runs schemathesis against it; these pin what its first run
found missing.
"""

import pytest

from shop.openapi import MECHANISM_ERRORS
from tests.openapi import schema

ERROR_REF = "#/components/schemas/ErrorOutput"


def operations():
    for path, methods in schema()["paths"].items():
        for method, operation in methods.items():
            yield f"{method.upper()} {path}", operation


def responses(label):
    return dict(operations())[label]["responses"]


def test_every_error_response_is_documented_with_the_one_error_body():
    for label, operation in operations():
        for status, response in operation["responses"].items():
            if int(status) >= 400:
                body = response["content"]["application/json"]["schema"]
                assert body == {"$ref": ERROR_REF}, (label, status)


def test_every_operation_documents_the_busy_answer_with_retry_after():
    for label, operation in operations():
        busy = operation["responses"].get("503")
        assert busy is not None, label
        assert busy["headers"]["Retry-After"]["required"] is True, label


@pytest.mark.parametrize(
    ("label", "statuses"),
    [
        # authenticators: 401; IsCustomer: 403; the path's id: 404
        ("GET /api/v1/orders/{order_id}/", {401, 403, 404}),
        # a paginated list: a forged cursor is a 404
        ("GET /api/v1/orders/", {401, 403, 404}),
        # query filters: 400; a forged cursor: 404
        ("GET /api/v1/products/", {400, 401, 404}),
        # a JSON body: 400 and 415; throttles: 429; no authentication at all
        ("POST /api/v1/auth/token/", {400, 415, 429}),
        # declared on the view: the business rules' statuses
        ("POST /api/v1/checkout/", {400, 401, 402, 403, 409, 415, 422}),
        ("POST /api/v1/cart/items/", {400, 401, 403, 409, 415}),
        ("POST /api/v1/orders/{order_id}/cancel/", {401, 403, 404, 409}),
    ],
)
def test_operations_document_the_errors_their_views_can_answer(label, statuses):
    documented = {int(s) for s in responses(label) if int(s) >= 400}
    assert documented == statuses | {503}


def test_a_status_declared_on_the_view_keeps_the_views_description():
    described = responses("POST /api/v1/checkout/")["400"]["description"]
    assert "cart_empty" in described
    assert described != MECHANISM_ERRORS[400]


@pytest.mark.parametrize(
    "label",
    [
        "GET /api/v1/categories/",
        "GET /api/v1/products/",
        "GET /api/v1/products/{slug}/",
        "POST /api/v1/auth/register/",
        "POST /api/v1/auth/token/",
    ],
)
def test_public_operations_say_that_no_credentials_are_needed(label):
    # An empty requirement: anonymous requests are allowed. Without it the
    # schema said these needed a token, and schemathesis reported them as
    # "accepts requests without authentication".
    assert {} in dict(operations())[label]["security"]


def test_the_order_list_is_documented_as_the_paginated_page_it_is():
    body = responses("GET /api/v1/orders/")["200"]["content"]["application/json"]
    assert body["schema"] == {"$ref": "#/components/schemas/PaginatedOrderOutputList"}


def test_path_parameters_carry_the_pattern_their_url_converter_accepts():
    parameters = {
        p["name"]: p["schema"]
        for label in ("GET /api/v1/products/{slug}/", "GET /api/v1/stock/{sku}/")
        for p in dict(operations())[label]["parameters"]
        if p["in"] == "path"
    }
    assert parameters["slug"]["pattern"] == "^[-a-zA-Z0-9_]+$"
    assert parameters["sku"]["pattern"] == "^[A-Z0-9][A-Z0-9-]{0,63}$"
