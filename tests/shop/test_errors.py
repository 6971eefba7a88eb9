"""Application errors carry no HTTP status; shop/errors.py alone maps them."""

import ast
import json
from pathlib import Path

import pytest
from django.db import OperationalError

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
    server_error,
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


# Modules whose only business is HTTP: a service that imports one is
# building a response, or naming a status, itself.
HTTP_MODULES = {
    "http",
    "django.http",
    "rest_framework.status",
    "rest_framework.response",
}


def imported_modules(tree) -> set[str]:
    """Every module the source imports, and every module it imports names from."""
    modules = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            modules |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            modules.add(node.module)
            # `from rest_framework import status` imports a module too.
            modules |= {f"{node.module}.{alias.name}" for alias in node.names}
    return modules


def status_literals(tree) -> list[int]:
    """Bare HTTP status numbers passed as `status=` (status=201)."""
    return [
        kw.value.value
        for node in ast.walk(tree)
        if isinstance(node, ast.Call)
        for kw in node.keywords
        if kw.arg == "status"
        and isinstance(kw.value, ast.Constant)
        and type(kw.value.value) is int
        and 100 <= kw.value.value <= 599
    ]


@pytest.mark.parametrize(
    "path", SERVICE_MODULES, ids=lambda p: str(p.relative_to(ROOT))
)
def test_services_name_no_http_status(path):
    """No service builds a response or names a status code.

    A service returns an outcome (a body, an ApplicationError) and
    shop/errors.py alone turns it into a status, for the response and for
    an answer stored before the response exists (checkout's keys).
    """
    tree = ast.parse(path.read_text())
    named = {
        node.id if isinstance(node, ast.Name) else node.attr
        for node in ast.walk(tree)
        if isinstance(node, ast.Name | ast.Attribute)
    }
    imported_names = {
        alias.asname or alias.name
        for node in ast.walk(tree)
        if isinstance(node, ast.ImportFrom)
        for alias in node.names
    }
    keywords = {
        kw.arg
        for node in ast.walk(tree)
        if isinstance(node, ast.Call)
        for kw in node.keywords
    }
    assert "status_code" not in keywords
    assert not named & {"Response", "APIException", "HttpResponse", "HTTPStatus"}
    assert "HTTPStatus" not in imported_names
    assert not {name for name in named if name.startswith("HTTP_")}
    assert not imported_modules(tree) & HTTP_MODULES
    assert status_literals(tree) == []


@pytest.mark.parametrize(
    "source",
    [
        "from http import HTTPStatus\nCREATED = HTTPStatus.CREATED.value",
        "import http\nCREATED = http.HTTPStatus.CREATED",
        "from rest_framework import status\nCREATED = status.HTTP_201_CREATED",
        "store(key_id=1, status=201, body={})",
    ],
)
def test_the_service_check_catches_each_way_of_naming_a_status(source):
    """The check above can fail: each of these is what it refuses."""
    tree = ast.parse(source)
    named = {
        node.id if isinstance(node, ast.Name) else node.attr
        for node in ast.walk(tree)
        if isinstance(node, ast.Name | ast.Attribute)
    }
    assert (
        "HTTPStatus" in named
        or imported_modules(tree) & HTTP_MODULES
        or status_literals(tree)
    )


def test_a_success_gets_its_status_from_the_same_module():
    assert errors.success_status("created") == 201
    assert errors.success_status("ok") == 200


class _LockTimeout(Exception):
    sqlstate = "55P03"


def test_handler500_answers_a_database_outage_with_a_503(rf):
    # Django calls handler500 inside its `except` block: so does this test.
    try:
        raise OperationalError("connection refused")
    except OperationalError:
        response = server_error(rf.get("/admin/"))

    assert response.status_code == 503
    assert response["Retry-After"] == "1"
    assert json.loads(response.content)["code"] == "database_unavailable"


def test_handler500_answers_a_lock_timeout_with_busy(rf):
    try:
        raise OperationalError("canceling statement") from _LockTimeout()
    except OperationalError:
        response = server_error(rf.get("/admin/"))

    assert response.status_code == 503
    assert json.loads(response.content)["code"] == "busy"


def test_handler500_is_a_500_for_anything_else(rf):
    try:
        raise KeyError("a bug")
    except KeyError:
        response = server_error(rf.get("/admin/"))

    assert response.status_code == 500
    assert json.loads(response.content)["code"] == "server_error"
