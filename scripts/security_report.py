"""The attack pass's verdict, from what the tools and the server wrote down.

    python scripts/security_report.py OUT_DIR

Reads, under OUT_DIR (var/security/ for scripts/security.sh):

    server.log               the server's access log: every request, its status
    phases.txt               "NAME LINE" where each tool's requests begin in it
    schemathesis-*.json      schemathesis's run reports (--report json)
    sqlmap.json              scripts/security_sqlmap.py's verdicts

and prints requests made, server errors, schema violations, other
schemathesis failures and injectable parameters. Exits 1 unless each of them
is zero and every tool finished its work: a target sqlmap could not test, or
a schemathesis run without a report, fails the pass as surely as a finding.

Server errors are counted in the server's own log, not only by the tools:
sqlmap reports injections, not the 500s its payloads may cause.
"""

import json
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path

# runserver's access log: [01/Dec/2026 08:08:15] "GET /api/v1/ HTTP/1.1" 200 65
ACCESS_LINE = re.compile(r'^\[[^\]]+\] "(?P<request>.*)" (?P<status>\d{3}) ')
# The last line of a traceback: django.db.utils.OperationalError: ...
EXCEPTION_LINE = re.compile(r"^[A-Za-z_][\w.]*(?:Error|Exception|Shutdown|Exit): ")

# schemathesis failure codes (`st explain CODE`).
SERVER_ERROR_CODES = {"ST101", "ST102"}
# ST103-ST111: status code, content type, headers, body.
SCHEMA_CODES = {f"ST{n}" for n in range(103, 112)}

SQLMAP_TESTED = re.compile(
    r"\] (?P<place>.+?) parameter '(?P<name>[^']+)' does not seem to be injectable"
)
SQLMAP_INJECTABLE = re.compile(
    r"\] (?P<place>.+?) parameter '(?P<name>[^']+)' "
    r"(?:is|appears to be) '(?P<technique>[^']+)' injectable"
)
SQLMAP_POINT = re.compile(r"(?m)^Parameter: (?P<name>.+) \((?P<place>.+)\)$")
SQLMAP_DONE = "all tested parameters do not appear to be injectable"
SQLMAP_ERROR = re.compile(r"\[(?:CRITICAL|ERROR)\] (?P<message>.+)")


@dataclass
class SqlmapVerdict:
    """What one sqlmap run says: clean, injectable, or not tested (error)."""

    status: str
    tested: list[str] = field(default_factory=list)
    injectable: list[str] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)


def _bare(name: str) -> str:
    # sqlmap names a JSON body's values "JSON email"; targets say "email".
    return name.removeprefix("JSON ")


def parse_sqlmap(transcript: str, expect=()) -> SqlmapVerdict:
    """Read sqlmap's console output; `expect` lists parameters it must test."""
    injectable = sorted(
        {_bare(m["name"]) for m in SQLMAP_INJECTABLE.finditer(transcript)}
        | {_bare(m["name"]) for m in SQLMAP_POINT.finditer(transcript)}
    )
    tested = sorted({_bare(m["name"]) for m in SQLMAP_TESTED.finditer(transcript)})
    missing = [name for name in expect if name not in tested and name not in injectable]
    errors = [
        m["message"]
        for m in SQLMAP_ERROR.finditer(transcript)
        if SQLMAP_DONE not in m["message"]
    ]
    if injectable:
        status = "injectable"
    elif SQLMAP_DONE in transcript and not missing and not errors:
        status = "clean"
    else:
        status = "not tested"
        if missing:
            errors.append("parameters not tested: " + ", ".join(missing))
        if not errors:
            errors.append("sqlmap ended without a verdict; see its log")
    return SqlmapVerdict(status, tested, injectable, missing, errors)


@dataclass
class Phase:
    name: str
    requests: int = 0
    server_errors: list[str] = field(default_factory=list)


def read_access_log(log: Path, phases_file: Path) -> list[Phase]:
    """Requests and 5xx answers per phase, split where each phase began."""
    starts = []
    if phases_file.is_file():
        for line in phases_file.read_text().splitlines():
            name, number = line.rsplit(" ", 1)
            starts.append((int(number), name))
    phases = [Phase(name) for _, name in starts] or [Phase("all")]
    current = -1 if starts else 0
    cause = ""  # the last exception line Django logged: why the next 500 happened
    text = log.read_text(errors="replace") if log.is_file() else ""
    for number, line in enumerate(text.splitlines(), start=1):
        while current + 1 < len(starts) and number > starts[current + 1][0]:
            current += 1
        match = ACCESS_LINE.match(line)
        if match is None:
            if EXCEPTION_LINE.match(line):
                cause = line
            continue
        if current < 0:
            continue
        phases[current].requests += 1
        if match["status"].startswith("5"):
            phases[current].server_errors.append(
                f"{match['status']} {match['request']}: {cause or 'no traceback'}"
            )
            cause = ""
    return phases


@dataclass
class SchemathesisRun:
    name: str
    test_cases: int = 0
    server_errors: int = 0
    schema_violations: int = 0
    other_failures: int = 0
    findings: list[str] = field(default_factory=list)
    problem: str | None = None  # the run did not finish: no verdict


def read_schemathesis(report: Path) -> SchemathesisRun:
    run = SchemathesisRun(report.stem.removeprefix("schemathesis-"))
    try:
        data = json.loads(report.read_text())
    except (OSError, ValueError) as exc:
        run.problem = f"no readable report ({exc}); see {report.with_suffix('.log')}"
        return run
    run.test_cases = data["test_cases"]["generated"]
    for failure in data["failures"]:
        code, count = failure["code"], failure["count"]
        if code in SERVER_ERROR_CODES:
            run.server_errors += count
        elif code in SCHEMA_CODES:
            run.schema_violations += count
        else:
            run.other_failures += count
        run.findings.append(
            f"{code} {failure['title']} ({count}): {', '.join(failure['operations'])}"
        )
    log = report.with_suffix(".log")
    if data["errors"]:
        titles = ", ".join(sorted({e["title"] for e in data["errors"]}))
        run.problem = f"schemathesis failed to test some cases ({titles}); see {log}"
    elif not data["complete"]:
        run.problem = f"stopped early ({data['stop_reason']}); see {log}"
    return run


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        print(__doc__, file=sys.stderr)
        return 2
    out = Path(argv[0])
    phases = read_access_log(out / "server.log", out / "phases.txt")
    runs = [read_schemathesis(p) for p in sorted(out.glob("schemathesis-*.json"))]
    sqlmap_file = out / "sqlmap.json"
    sqlmap = json.loads(sqlmap_file.read_text()) if sqlmap_file.is_file() else []

    problems = [f"schemathesis {r.name}: {r.problem}" for r in runs if r.problem]
    if not runs:
        problems.append("schemathesis did not run")
    if not sqlmap:
        problems.append("sqlmap did not run")
    problems += [
        f"sqlmap {t['target']}: {'; '.join(t['errors'])}"
        for t in sqlmap
        if t["status"] == "not tested"
    ]
    if not any(p.requests for p in phases):
        problems.append("no request reached the server (see server.log)")
    logged_errors = [e for p in phases for e in p.server_errors]
    server_errors = max(len(logged_errors), sum(r.server_errors for r in runs))
    violations = sum(r.schema_violations for r in runs)
    other = sum(r.other_failures for r in runs)
    injectable = [f"{t['target']}: {name}" for t in sqlmap for name in t["injectable"]]
    tested = sum(len(t["tested"]) for t in sqlmap)

    print("== make security ==")
    for phase in phases:
        print(f"  {phase.name:<24} {phase.requests:>6} requests")
    for run in runs:
        print(f"  schemathesis {run.name:<11} {run.test_cases:>6} test cases")
        for finding in run.findings:
            print(f"      {finding}")
    print(f"  sqlmap: {len(sqlmap)} targets, {tested} parameters tested")
    for line in logged_errors[:20]:
        print(f"      server error: {line}")
    for line in injectable:
        print(f"      injectable: {line}")
    for line in problems:
        print(f"      not finished: {line}")
    print(f"requests made:           {sum(p.requests for p in phases)}")
    print(f"server errors:           {server_errors}")
    print(f"schema violations:       {violations}")
    print(f"other check failures:    {other}")
    print(f"injectable parameters:   {len(injectable)}")
    print(f"unfinished tool runs:    {len(problems)}")
    failed = server_errors or violations or other or injectable or problems
    print("result: " + ("FAILED (each count must be 0)" if failed else "passed"))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
