"""The request id, the JSON log lines and the SQL each request runs.

X-Request-ID comes in or is made, goes out, and labels every line logged
while the request runs, the access line included, which counts the
request's statements on every alias. A Celery task, run by a real worker on
the real broker, logs under the id of the request that enqueued it.
"""

import io
import json
import logging
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest
from django.conf import settings
from django.http import HttpResponse
from django.test import RequestFactory
from rest_framework.authtoken.models import Token

from shop.celery import app as celery_app
from shop.observability.context import request_id_get, request_id_var
from shop.observability.logs import JsonFormatter, RequestContextFilter, TextFormatter
from shop.observability.middleware import RequestIdMiddleware
from tests.accounts.factories import CustomerFactory
from tests.orders.test_tasks import wait_for, worker  # noqa: F401 (a fixture)
from tests.replicas import REPLICA_DATABASES, replica_ready

pytestmark = pytest.mark.django_db(databases=["default", "replica"])

ROOT = Path(__file__).resolve().parents[2]
GENERATED = re.compile(r"[0-9a-f]{32}")


@pytest.fixture
def json_lines():
    """The JSON lines logged during the test, as the console handler writes them."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter())
    handler.addFilter(RequestContextFilter())
    root = logging.getLogger()
    level = root.level
    root.addHandler(handler)
    root.setLevel(logging.DEBUG)
    try:
        yield lambda: [json.loads(line) for line in stream.getvalue().splitlines()]
    finally:
        root.removeHandler(handler)
        root.setLevel(level)


def access_lines(lines):
    return [line for line in lines if line["logger"] == "shop.access"]


# --- X-Request-ID ------------------------------------------------------------


@pytest.mark.parametrize(
    "sent", ["abc-123", "Req.42_x", "a" * 128, "0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0"]
)
def test_a_sane_request_id_is_kept_and_returned(client, sent):
    response = client.get("/livez", HTTP_X_REQUEST_ID=sent)

    assert response["X-Request-ID"] == sent


@pytest.mark.parametrize(
    "sent",
    [
        "",
        "a" * 129,
        "has space",
        "semi;colon",
        'quote"d',
        "x\r\nX-Injected: 1",
        "\u00e9t\u00e9",
        '{"json": 1}',
        "' OR 1=1 --",
    ],
)
def test_anything_else_is_replaced_by_a_new_id(client, sent):
    response = client.get("/livez", HTTP_X_REQUEST_ID=sent)

    assert GENERATED.fullmatch(response["X-Request-ID"])
    assert "X-Injected" not in response


def test_each_request_without_one_gets_its_own(client, api_client):
    ids = {client.get("/livez")["X-Request-ID"] for _ in range(3)}
    ids.add(api_client.get("/api/v1/categories/")["X-Request-ID"])

    assert len(ids) == 4
    assert all(GENERATED.fullmatch(i) for i in ids)
    assert request_id_get() is None  # nothing is left behind after a request


def test_errors_carry_the_id_too(client):
    response = client.get("/api/v1/nowhere/", HTTP_X_REQUEST_ID="lost-1")

    assert response.status_code == 404
    assert response["X-Request-ID"] == "lost-1"


# --- the log lines -----------------------------------------------------------


def test_every_line_logged_during_a_request_carries_its_id(json_lines):
    def view(request):
        logging.getLogger("tests.observability").warning("inside %s", "the view")
        return HttpResponse("ok")

    request = RequestFactory().get("/anything", HTTP_X_REQUEST_ID="rid-inside")
    RequestIdMiddleware(view)(request)
    logging.getLogger("tests.observability").warning("after the request")

    inside, access, after = json_lines()
    assert (inside["message"], inside["request_id"]) == (
        "inside the view",
        "rid-inside",
    )
    assert inside["level"] == "WARNING"
    assert inside["logger"] == "tests.observability"
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}\+00:00", inside["ts"])
    assert access["request_id"] == "rid-inside"
    assert after["request_id"] is None


def test_the_access_line_says_who_what_and_what_it_cost(client, json_lines):
    user = CustomerFactory().user
    token = Token.objects.create(user=user).key

    response = client.get(
        "/api/v1/cart/",
        HTTP_AUTHORIZATION=f"Token {token}",
        HTTP_X_REQUEST_ID="cart-1",
        QUERY_STRING="secret=hidden",
    )

    (line,) = access_lines(json_lines())
    assert response.status_code == 200
    assert line["request_id"] == "cart-1"
    assert line["user_id"] == user.pk  # the token's user, found by DRF
    assert (line["method"], line["path"], line["status"]) == (
        "GET",
        "/api/v1/cart/",
        200,
    )
    assert line["message"] == "GET /api/v1/cart/ 200"
    assert "hidden" not in json.dumps(line)  # no query string in the log
    assert line["sql_count"] >= 2  # the token lookup and the cart at least
    assert 0 <= line["sql_ms"] <= line["duration_ms"]


def test_no_line_of_an_error_response_carries_its_query_string(client, json_lines):
    # Django logs every 4xx with the request as an extra, whose repr is the
    # whole URL: the formatter keeps its method and path only.
    response = client.get("/api/v1/products/no-such-product/?email=alice@example.com")

    assert response.status_code == 404
    lines = json_lines()
    assert any(line.get("request") for line in lines), "Django's line is missing"
    assert all("alice@example.com" not in json.dumps(line) for line in lines)


def test_an_anonymous_request_has_no_user(client, json_lines):
    client.get("/api/v1/categories/")

    (line,) = access_lines(json_lines())
    assert line["user_id"] is None


# Transactional: inside the test's transaction every read stays on the primary.
@pytest.mark.django_db(transaction=True, databases=REPLICA_DATABASES)
def test_sql_is_counted_on_every_alias(
    api_client, json_lines, replica_routing, queries_by_alias
):
    replica_ready()  # anonymous catalog reads now go to the replica
    with queries_by_alias() as queries:
        response = api_client.get("/api/v1/products/")

    (line,) = access_lines(json_lines())
    assert response.status_code == 200
    assert queries["replica"], "the product list did not read the replica"
    assert line["sql_count"] == sum(len(q) for q in queries.values())


def test_a_successful_probe_is_logged_below_info(client, json_lines):
    client.get("/livez")

    (line,) = access_lines(json_lines())
    assert line["level"] == "DEBUG"
    assert line["sql_count"] == 0


def test_the_text_format_shows_the_id_and_leaves_the_record_alone():
    record = logging.LogRecord("shop.x", logging.INFO, __file__, 1, "hi", None, None)
    RequestContextFilter().filter(record)

    assert TextFormatter().format(record).endswith("INFO shop.x [-] hi")
    assert record.request_id is None
    assert json.loads(JsonFormatter().format(record))["request_id"] is None


def test_the_shops_processes_log_json_by_default():
    """The settings' LOGGING, as a manage.py process really writes it."""
    script = (
        "import logging; from shop.observability.context import request_id_var; "
        "request_id_var.set('from-settings'); "
        "logging.getLogger('shop.try').warning('hello %s', 'json')"
    )
    env = {k: v for k, v in os.environ.items() if k != "LOG_FORMAT"}
    env["DJANGO_SETTINGS_MODULE"] = "shop.settings.test"
    done = subprocess.run(
        [sys.executable, "manage.py", "shell", "-c", script],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )

    lines = [json.loads(line) for line in done.stderr.splitlines()]
    (mine,) = [line for line in lines if line["logger"] == "shop.try"]
    assert mine["message"] == "hello json"
    assert mine["request_id"] == "from-settings"
    assert set(mine) == {"ts", "level", "logger", "message", "request_id", "user_id"}
    assert settings.LOG_FORMAT in {"json", "text"}


# --- Celery -------------------------------------------------------------------

SEEN = {}


@celery_app.task(name="tests.shop.test_observability.request_id_seen")
def request_id_seen(key):
    logging.getLogger("tests.observability.task").info("task %s ran", key)
    SEEN[key] = request_id_get()


def test_an_eager_task_runs_under_the_requests_id_and_gives_it_back():
    assert celery_app.conf.task_always_eager  # the suite's default
    token = request_id_var.set("eager-rid")
    try:
        request_id_seen.delay("eager")
        assert request_id_get() == "eager-rid"
    finally:
        request_id_var.reset(token)

    assert SEEN.pop("eager") == "eager-rid"


@pytest.mark.django_db(transaction=True, databases=["default", "owner", "replica"])
def test_a_worker_logs_under_the_id_of_the_request_that_enqueued(
    worker,  # noqa: F811
    json_lines,
):
    token = request_id_var.set("enqueued-by-rid")
    try:
        request_id_seen.delay("worker")
    finally:
        request_id_var.reset(token)

    assert wait_for(lambda: "worker" in SEEN)
    assert SEEN.pop("worker") == "enqueued-by-rid"
    # The worker's own thread set it: this one has none.
    assert request_id_get() is None
    time.sleep(0.2)  # Celery's "succeeded" line comes just after the task
    ran = [line for line in json_lines() if line["message"] == "task worker ran"]
    assert [line["request_id"] for line in ran] == ["enqueued-by-rid"]


@pytest.mark.django_db(transaction=True, databases=["default", "owner", "replica"])
def test_a_task_enqueued_outside_a_request_runs_with_no_id(worker):  # noqa: F811
    request_id_seen.delay("no-request")

    assert wait_for(lambda: "no-request" in SEEN)
    assert SEEN.pop("no-request") is None
