"""The top statements of pg_stat_statements: `manage.py top_queries` and
GET /api/v1/ops/top-queries/, read as shop_monitor.

The statements are real: a marker statement is run as the app's role and
then looked for, with the text only pg_read_all_stats shows another role.
Who may call the endpoint is tests/shop/test_permissions.py's matrix.
"""

import io
import socket

import pytest
from django.core.management import CommandError, call_command
from django.db import connections

pytestmark = pytest.mark.django_db(databases=["default", "replica"])

URL = "/api/v1/ops/top-queries/"
# Slow enough to rank among the slowest statements per call of the test
# database, whatever else the suite has run in it.
MARKER_SECONDS = 0.3


# A shape no other statement of the suite has: pg_stat_statements files
# statements by their shape (comments and constants left out), and keeps
# the text of the first one it saw.
MARKER = "pg_sleep_for(make_interval(secs =>"


@pytest.fixture
def marker():
    """What the text of a slow statement the app's role just ran contains."""
    with connections["default"].cursor() as cursor:
        # A few calls: when pg_stat_statements is full, as a whole test run's
        # databases make it, each new entry evicts the least used ones, and
        # an entry of one call is among them.
        for _ in range(3):
            cursor.execute(
                "SELECT pg_sleep_for(make_interval(secs => %s))", [MARKER_SECONDS]
            )
    return MARKER


def test_staff_see_every_roles_statements_slowest_first(staff_client, marker):
    response = staff_client.get(URL, {"order": "mean", "limit": 100})

    assert response.status_code == 200
    body = response.json()
    assert (body["order"], body["limit"]) == ("mean", 100)
    results = body["results"]
    assert 0 < len(results) <= 100
    means = [row["mean_exec_ms"] for row in results]
    assert means == sorted(means, reverse=True)
    (mine,) = [row for row in results if marker in row["query"]]
    # The app's statement, text and all: shop_monitor may see it.
    assert mine["role"] == "shop_app"
    assert mine["calls"] >= 1
    assert mine["mean_exec_ms"] >= MARKER_SECONDS * 1000
    assert int(mine["queryid"])
    assert set(mine) == {
        "queryid",
        "role",
        "calls",
        "total_exec_ms",
        "mean_exec_ms",
        "rows",
        "shared_blks_hit",
        "shared_blks_read",
        "query",
    }


def test_the_default_is_the_top_twenty_by_total_time(staff_client):
    body = staff_client.get(URL).json()

    assert (body["order"], body["limit"]) == ("total", 20)
    totals = [row["total_exec_ms"] for row in body["results"]]
    assert 0 < len(totals) <= 20
    assert totals == sorted(totals, reverse=True)


def test_by_calls_and_limited(staff_client):
    body = staff_client.get(URL, {"order": "calls", "limit": 2}).json()

    calls = [row["calls"] for row in body["results"]]
    assert len(calls) == 2
    assert calls == sorted(calls, reverse=True)


@pytest.mark.parametrize(
    "query",
    [
        {"limit": 0},
        {"limit": 101},
        {"limit": "ten"},
        {"limit": "1; DROP TABLE catalog_product"},
        {"order": "query"},
        {"order": "total_exec_time DESC; --"},
    ],
    ids=lambda q: "-".join(f"{k}={v}" for k, v in q.items())[:30],
)
def test_a_bad_parameter_is_a_400_that_says_which(staff_client, query):
    response = staff_client.get(URL, query)

    assert response.status_code == 400
    body = response.json()
    assert body["code"] == "invalid"
    assert set(query) <= set(body["errors"])


def test_customers_are_refused(customer_client, api_client):
    assert customer_client.get(URL).status_code == 403
    assert api_client.get(URL).status_code == 401


@pytest.fixture
def monitor_stopped(monkeypatch):
    """The monitor alias points where nothing listens."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
        monitor = connections["monitor"]
        monkeypatch.setitem(monitor.settings_dict, "PORT", str(port))
        yield


def test_an_unreachable_primary_is_a_503_that_names_the_role(
    staff_client, monitor_stopped
):
    response = staff_client.get(URL)

    assert response.status_code == 503
    assert response["Retry-After"]
    body = response.json()
    assert body["code"] == "database_unavailable"
    assert "shop_monitor" in body["detail"]


def test_the_command_prints_the_top_statements(marker):
    out = io.StringIO()

    call_command("top_queries", "--order", "mean", "--limit", "100", stdout=out)

    lines = out.getvalue().splitlines()
    assert lines[0].split()[:4] == ["calls", "total", "ms", "mean"]
    assert 1 < len(lines) <= 101
    assert any(marker in line for line in lines[1:])


def test_the_command_refuses_a_limit_out_of_range():
    with pytest.raises(CommandError, match="limit must be between 1 and 100"):
        call_command("top_queries", "--limit", "0", stdout=io.StringIO())
