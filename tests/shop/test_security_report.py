"""`make security` decides from the tools' output (scripts/security_report.py).

The sqlmap transcripts under tests/shop/sqlmap/ are real: clean.log from the
pass against the shop, injectable.log from sqlmap against a throw-away
server that pastes a query parameter into its SQL. A pass that cannot tell
the two apart, or that counts an unfinished run as clean, proves nothing.
"""

import importlib.util
import json
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
TRANSCRIPTS = Path(__file__).with_name("sqlmap")


@pytest.fixture(scope="module")
def report():
    spec = importlib.util.spec_from_file_location(
        "security_report", ROOT / "scripts" / "security_report.py"
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def transcript(name):
    return (TRANSCRIPTS / name).read_text()


def test_an_injectable_parameter_is_reported(report):
    verdict = report.parse_sqlmap(transcript("injectable.log"), expect=("category",))
    assert verdict.status == "injectable"
    assert verdict.injectable == ["category"]


def test_a_run_that_tested_every_parameter_and_found_nothing_is_clean(report):
    verdict = report.parse_sqlmap(transcript("clean.log"), expect=("#1*", "quantity"))
    assert verdict.status == "clean"
    assert verdict.tested == ["#1*", "quantity"]  # "JSON quantity" in sqlmap's words


def test_a_parameter_sqlmap_never_tested_is_not_clean(report):
    verdict = report.parse_sqlmap(transcript("clean.log"), expect=("quantity", "sku"))
    assert verdict.status == "not tested"
    assert verdict.missing == ["sku"]


def test_a_run_cut_short_is_not_clean(report):
    lines = transcript("clean.log").splitlines()
    cut = "\n".join(lines[: len(lines) // 2])
    assert report.parse_sqlmap(cut).status == "not tested"


def test_a_run_sqlmap_gave_up_on_is_not_clean(report):
    text = (
        "[08:15:13] [CRITICAL] not authorized, try to provide right HTTP "
        "authentication type and valid credentials (401)\n"
    )
    verdict = report.parse_sqlmap(text)
    assert verdict.status == "not tested"
    assert verdict.errors[0].startswith("not authorized")


ACCESS_LOG = """\
Starting development server at http://127.0.0.1:8765/
[01/Dec/2026 08:08:15] "GET /api/schema/ HTTP/1.1" 200 48028
[01/Dec/2026 08:08:16] "GET /api/v1/products/?search=x HTTP/1.1" 200 65
Internal Server Error: /api/v1/auth/token/
Traceback (most recent call last):
  File "shop/accounts/services.py", line 45, in token_issue
django.db.utils.OperationalError: terminating connection
[01/Dec/2026 08:08:17] "POST /api/v1/auth/token/ HTTP/1.1" 500 87
[01/Dec/2026 08:08:18] "GET /api/v1/cart/ HTTP/1.1" 401 58
"""


def test_requests_and_server_errors_are_counted_per_phase_with_their_cause(
    report, tmp_path
):
    (tmp_path / "server.log").write_text(ACCESS_LOG)
    (tmp_path / "phases.txt").write_text("sqlmap 1\nschemathesis-anonymous 3\n")

    sqlmap, anonymous = report.read_access_log(
        tmp_path / "server.log", tmp_path / "phases.txt"
    )

    assert (sqlmap.name, sqlmap.requests, sqlmap.server_errors) == ("sqlmap", 2, [])
    assert anonymous.requests == 2
    assert anonymous.server_errors == [
        "500 POST /api/v1/auth/token/ HTTP/1.1: "
        "django.db.utils.OperationalError: terminating connection"
    ]


def schemathesis_report(failures, errors=(), complete=True):
    return {
        "test_cases": {"generated": 10},
        "failures": [
            {"code": code, "title": code, "count": 1, "operations": ["GET /x"]}
            for code in failures
        ],
        "errors": list(errors),
        "complete": complete,
        "stop_reason": "completed" if complete else "interrupted",
    }


def test_schemathesis_failures_are_sorted_into_server_errors_schema_and_other(
    report, tmp_path
):
    path = tmp_path / "schemathesis-staff.json"
    path.write_text(
        json.dumps(schemathesis_report(["ST101", "ST103", "ST108", "ST401"]))
    )

    run = report.read_schemathesis(path)

    assert (run.name, run.test_cases) == ("staff", 10)
    assert (run.server_errors, run.schema_violations, run.other_failures) == (1, 2, 1)
    assert run.problem is None


CLEAN_LOG = "\n".join(line for line in ACCESS_LOG.splitlines() if '" 500 ' not in line)


def test_an_error_inside_schemathesis_leaves_its_run_unfinished(report, tmp_path):
    path = tmp_path / "schemathesis-customer.json"
    errors = [{"title": "Runtime Error", "count": 1}]
    path.write_text(json.dumps(schemathesis_report([], errors=errors)))

    assert "Runtime Error" in report.read_schemathesis(path).problem


def write_pass(directory, *, failures=(), sqlmap_status="clean", log=CLEAN_LOG):
    (directory / "server.log").write_text(log)
    (directory / "phases.txt").write_text("sqlmap 1\n")
    (directory / "schemathesis-anonymous.json").write_text(
        json.dumps(schemathesis_report(failures))
    )
    verdict = {"status": sqlmap_status, "tested": ["email"], "errors": []}
    verdict["injectable"] = ["email"] if sqlmap_status == "injectable" else []
    (directory / "sqlmap.json").write_text(json.dumps([{"target": "t", **verdict}]))


def test_the_pass_passes_only_when_every_count_is_zero(report, tmp_path, capsys):
    write_pass(tmp_path)
    assert report.main([str(tmp_path)]) == 0
    assert "result: passed" in capsys.readouterr().out


@pytest.mark.parametrize(
    "findings",
    [
        {"log": ACCESS_LOG},  # a 500 in the server's log that no tool reported
        {"failures": ["ST108"]},
        {"sqlmap_status": "injectable"},
        {"sqlmap_status": "not tested"},
    ],
)
def test_any_finding_or_unfinished_run_fails_the_pass(report, tmp_path, findings):
    write_pass(tmp_path, **findings)
    assert report.main([str(tmp_path)]) == 1


def test_a_missing_schemathesis_report_fails_the_pass(report, tmp_path):
    write_pass(tmp_path)
    (tmp_path / "schemathesis-anonymous.json").unlink()
    (tmp_path / "schemathesis-customer.json").write_text("{not json")
    assert report.main([str(tmp_path)]) == 1
