"""The primary's log (scripts/pg/logging.conf): what it keeps, what it never does.

Read back from var/log/primary.log, where scripts/services.sh sends the
local primary's log; away from that cluster (docker compose, a managed
server) the tests skip and say why. The statements carry their parameters
the way the encryption keys travel: bound server-side, through
shop/crypto.py:execute_with_keys, as shop_app.
"""

import uuid

import pytest
from django.db import DataError, connections

from shop import pgaudit, pglog
from shop.crypto import execute_with_keys

pytestmark = pytest.mark.django_db(databases=["default", "owner"])


@pytest.fixture
def server_log():
    """The primary's log file and where it ends now."""
    path = pgaudit.server_log()
    if path is None:
        pytest.skip("no var/log/primary.log: not the local cluster of services.sh")
    return path, pgaudit.log_end(path)


@pytest.fixture
def secret():
    """A value that must never reach the log, unique to the test."""
    return f"key-{uuid.uuid4().hex}"


@pytest.fixture
def tag():
    """A comment that names the test's statements in the log; not a secret."""
    return f"pglog-{uuid.uuid4().hex[:12]}"


def setting(name):
    with connections["default"].cursor() as cursor:
        cursor.execute("SELECT current_setting(%s)", [name])
        return cursor.fetchone()[0]


def threshold_ms():
    """log_min_duration_statement in milliseconds; -1 means none is logged."""
    with connections["default"].cursor() as cursor:
        cursor.execute(
            "SELECT setting::int FROM pg_settings "
            "WHERE name = 'log_min_duration_statement'"
        )
        return cursor.fetchone()[0]


def test_the_server_never_logs_bound_parameters(server_log):
    assert setting("log_parameter_max_length") == "0"
    assert setting("log_parameter_max_length_on_error") == "0"


def test_each_line_starts_with_the_time_pgbadger_and_pgaudit_parse(server_log):
    prefix = setting("log_line_prefix")

    assert prefix.startswith("%m ")
    assert all(field in prefix for field in ("%p", "%u", "%d", "%a", "%h"))
    assert setting("lc_messages") in ("C", "C.UTF-8", "en_US.UTF-8")


def test_a_slow_statement_is_logged_with_its_text_and_without_its_key(
    server_log, secret, tag
):
    path, since = server_log
    threshold = threshold_ms()
    assert threshold >= 0, "log_min_duration_statement is off: nothing slow is logged"
    pause = (threshold + 50) / 1000

    execute_with_keys(
        f"/* {tag} */ SELECT pg_sleep(%(pause)s), length(%(key)s::text)",
        {"pause": pause, "key": secret},
    )

    logged = pgaudit.log_text(path, since)
    (entry,) = [e for e in pglog.entries(logged) if tag in e]
    fields = pglog.head(entry)
    assert fields is not None, entry
    assert (fields["user"], fields["db"], fields["level"]) == (
        "shop_app",
        connections["default"].settings_dict["NAME"],
        "LOG",
    )
    assert "duration: " in entry
    assert f"/* {tag} */ SELECT pg_sleep($1), length($2::text)" in entry
    assert secret not in logged  # no "parameters: $2 = '...'" line either


def test_a_failed_statement_is_logged_without_its_key(server_log, secret, tag):
    path, since = server_log

    with pytest.raises(DataError, match="division by zero"):
        execute_with_keys(
            f"/* {tag} */ SELECT 1 / (length(%(key)s::text) - length(%(key)s::text))",
            {"key": secret},
        )

    logged = pgaudit.log_text(path, since)
    statement = [e for e in pglog.entries(logged) if tag in e]
    assert [pglog.head(e)["level"] for e in statement] == ["STATEMENT"]
    assert "division by zero" in logged
    assert secret not in logged  # no "portal with parameters" context line


@pytest.mark.skipif(
    pglog.pgbadger_path() is None,
    reason="pgbadger is not installed: apt-get install pgbadger (.ci/run does)",
)
def test_pgbadger_reads_the_servers_lines_with_its_prefix(server_log, tag, tmp_path):
    path, since = server_log
    execute_with_keys(
        f"/* {tag} */ SELECT pg_sleep(%(pause)s)",
        {"pause": (threshold_ms() + 50) / 1000},
    )
    log = tmp_path / "postgresql.log"
    log.write_text(pgaudit.log_text(path, since), encoding="utf-8")

    report = pglog.pgbadger(
        log, tmp_path / "report.txt", prefix=pglog.line_prefix(), text=True
    ).read_text(encoding="utf-8")

    # A prefix pgBadger cannot parse gives an empty report, not an error.
    assert "Number of queries: 0" not in report
    slowest = report.split("- Slowest queries -", 1)[1]
    assert f"/* {tag} */ SELECT pg_sleep(" in slowest
    assert "user: shop_app" in slowest


def test_a_run_keeps_its_own_databases_entries_and_the_checkpointers():
    prefix = "2026-01-02 03:04:05.678 UTC [{pid}] user={user},db={db},app=,client= "
    lines = {
        "mine": prefix.format(pid=1, user="shop_app", db="run")
        + "LOG:  duration: 1.0 ms  statement: SELECT 1\n  FROM t\n",
        "other": prefix.format(pid=2, user="shop_app", db="other")
        + "LOG:  duration: 2.0 ms  statement: SELECT 2\n",
        "checkpoint": prefix.format(pid=3, user="", db="")
        + "LOG:  checkpoint complete: wrote 3 buffers (0.0%)\n",
        "vacuum mine": prefix.format(pid=4, user="", db="")
        + 'LOG:  automatic vacuum of table "run.public.t": index scans: 0\n',
        "vacuum other": prefix.format(pid=5, user="", db="")
        + 'LOG:  automatic analyze of table "other.public.t"\n',
    }

    chunks = pglog.entries("".join(lines.values()))

    assert chunks == list(lines.values())  # the continued line stays with its entry
    kept = pglog.of_database(chunks, "run")
    assert kept == [lines["mine"], lines["checkpoint"], lines["vacuum mine"]]
