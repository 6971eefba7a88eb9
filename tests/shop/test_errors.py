"""Application errors carry no HTTP status; shop/errors.py alone maps them."""

import ast
from pathlib import Path

import pytest

from shop import errors
from shop.errors import (
    ApplicationError,
    Conflict,
    InvalidRequest,
    NotFound,
    PaymentFailed,
    ServiceUnavailable,
    Unprocessable,
    api_exception_handler,
)

ROOT = Path(__file__).resolve().parents[2]
SERVICE_MODULES = sorted(
    [
        *ROOT.glob("*/services.py"),
        *ROOT.glob("*/services/*.py"),
        *ROOT.glob("shop/*/services.py"),
    ]
)


@pytest.mark.parametrize(
    ("kind", "status"),
    [
        (InvalidRequest, 400),
        (PaymentFailed, 402),
        (NotFound, 404),
        (Conflict, 409),
        (Unprocessable, 422),
        (ServiceUnavailable, 503),
    ],
)
def test_each_kind_of_error_answers_with_its_status(kind, status):
    response = api_exception_handler(kind("Why.", code="some_rule", skus=["A"]), {})

    assert response.status_code == status
    assert response.data == {"code": "some_rule", "detail": "Why.", "skus": ["A"]}


def test_a_subclass_inherits_its_kinds_status():
    class StockShort(Conflict):
        code = "insufficient_stock"

    assert errors.http_status(StockShort()) == 409
    assert errors.http_status(ApplicationError()) == 400


def test_unavailable_tells_the_client_when_to_retry():
    response = api_exception_handler(ServiceUnavailable(code="busy"), {})

    assert response["Retry-After"] == "1"


def test_not_found_has_a_default_code_and_detail():
    assert errors.error_status_and_body(NotFound()) == (
        404,
        {"code": "not_found", "detail": "This does not exist."},
    )


@pytest.mark.parametrize(
    "path", SERVICE_MODULES, ids=lambda p: str(p.relative_to(ROOT))
)
def test_services_name_no_http_status(path):
    """No service builds a response or names a status code."""
    tree = ast.parse(path.read_text())
    named = {
        node.id if isinstance(node, ast.Name) else node.attr
        for node in ast.walk(tree)
        if isinstance(node, ast.Name | ast.Attribute)
    }
    keywords = {
        kw.arg
        for node in ast.walk(tree)
        if isinstance(node, ast.Call)
        for kw in node.keywords
    }
    assert "status_code" not in keywords
    assert not named & {"Response", "APIException", "HttpResponse"}
    assert not {name for name in named if name.startswith("HTTP_")}
