"""The HTTP benchmark (bench/http.py) runs whole, at the smallest bounds.

`make bench` runs it for minutes on the large seed, in no CI job, so here
it runs end to end as a process of its own: a scratch database of its own,
migrated, seeded small and dropped, every configuration's gunicorn server,
Locust on every endpoint with two users for two seconds a cell. It must
finish without a failed request and print every cell. Its scratch database
is created and dropped by the same Django call as the test database, so it
cannot run inside the suite's process (tests/bench/test_bench.py says why).
"""

import json
import os
import re
import subprocess
import sys
from importlib.util import find_spec
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from django.conf import settings

from bench import http as bench_http
from bench import report

ROOT = Path(__file__).resolve().parents[2]
needs_the_bench_tools = pytest.mark.skipif(
    find_spec("locust") is None or find_spec("gunicorn") is None,
    reason="Locust or gunicorn is not installed: `make install-bench` "
    "(requirements-bench.txt) installs them",
)


def test_each_configuration_turns_one_switch_of_the_baseline():
    baseline, *others = bench_http.CONFIGURATIONS
    assert baseline.env == {}
    for configuration in others:
        (switch, value), *more = configuration.env.items()
        assert not more, configuration.name
        assert switch in bench_http.BASELINE, configuration.name
        assert value != bench_http.BASELINE[switch], configuration.name


# What a server's settings make of its environment, read in a process of its
# own: production's settings, as gunicorn's workers load them.
SERVER_SETTINGS = """
import json
from django.conf import settings as s
default = s.DATABASES["default"]
print(json.dumps({
    "database": default["NAME"],
    "cache": s.CATALOG_CACHE,
    "replica": s.REPLICA_READS,
    "pgbouncer": str(default["PORT"]) == str(s.PGBOUNCER_PORT),
    "pooled": any("pool" in c["OPTIONS"] for c in s.DATABASES.values()),
}))
"""
BASELINE_SEES = {"cache": False, "replica": True, "pgbouncer": False, "pooled": True}
EACH_SEES = {
    "baseline": {},
    "cached": {"cache": True},
    "primary": {"replica": False},
    "pgbouncer": {"pgbouncer": True},
    "unpooled": {"pooled": False},
}


@pytest.mark.parametrize(
    "configuration", bench_http.CONFIGURATIONS, ids=lambda c: c.name
)
def test_each_server_runs_with_its_one_switch_turned(configuration):
    env = bench_http.server_env(
        configuration, "shop_http_settings", bench_http.bench_redis_url()
    )

    done = subprocess.run(
        [sys.executable, "-c", SERVER_SETTINGS],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )

    assert done.returncode == 0, done.stderr[-2000:]
    assert json.loads(done.stdout) == {
        "database": "shop_http_settings",
        **BASELINE_SEES,
        **EACH_SEES[configuration.name],
    }


def test_the_tables_hold_every_cell_with_its_ratio_to_the_baseline():
    configurations = bench_http.CONFIGURATIONS[:2]
    endpoints = bench_http.ENDPOINTS
    cells = [
        bench_http.Cell(
            endpoint.key,
            configuration.name,
            requests_per_second=50.0 * (n + 1),
            failures=0,
            p50=4.0 / (n + 1),
            p99=12.0,
        )
        for endpoint in endpoints
        for n, configuration in enumerate(configurations)
    ]

    text = bench_http.render_tables(
        cells, configurations=configurations, endpoints=endpoints
    )

    rows = [line for line in text.splitlines() if line.startswith("| ")]
    header = f"| endpoint | {configurations[0].name} | {configurations[1].name} |"
    assert rows.count(header) == 3  # requests/s, p50, p99
    for endpoint in endpoints:
        assert f"| {endpoint.title} | 50 | 100 (2.00) |" in rows
        assert f"| {endpoint.title} | 4.00 | 2.00 (0.50) |" in rows
        assert f"| {endpoint.title} | 12.0 | 12.0 (1.00) |" in rows


def test_unknown_endpoints_or_configurations_are_refused_by_name():
    with pytest.raises(SystemExit, match="unknown endpoints"):
        bench_http.parse_args(["--endpoints", "ping,nowhere"])
    args = bench_http.parse_args(["--endpoints", "checkout,ping"])
    # In the table's order, whatever the order given.
    assert [e.key for e in args.endpoints] == ["ping", "checkout"]


@needs_the_bench_tools
@pytest.mark.slow
def test_the_http_benchmark_runs_every_cell_at_the_smallest_bounds(tmp_path):
    scratch = f"{settings.DATABASES['owner']['TEST']['NAME']}_http"
    env = {
        **os.environ,
        "SHOP_HTTP_DB_NAME": scratch,
        # A Redis database of its own, apart from a real run's (12).
        "SHOP_BENCH_HTTP_REDIS_URL": urlsplit(settings.REDIS_URL)
        ._replace(path="/11")
        .geturl(),
    }
    command = [
        sys.executable,
        "-m",
        "bench.http",
        "--scale",
        "small",
        "--users",
        "2",
        "--run-time",
        "2",
        "--slugs",
        "20",
        "--out",
        str(tmp_path),
        "--drop",
    ]

    done = subprocess.run(
        command,
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )

    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    skipped = dict(re.findall(r"^not measured: (\w+): (.+)$", done.stdout, re.M))
    assert "baseline" not in skipped
    measured = [c.name for c in bench_http.CONFIGURATIONS if c.name not in skipped]
    header = "| endpoint | " + " | ".join(measured) + " |"
    assert done.stdout.count(header) == 3, done.stdout
    for endpoint in bench_http.ENDPOINTS:
        row = next(
            line
            for line in done.stdout.splitlines()
            if line.startswith(f"| {endpoint.title} |")
        )
        # Every configuration served it: requests/s above zero in each column.
        figures = [cell.split()[0] for cell in row.strip(" |").split(" | ")[1:]]
        assert len(figures) == len(measured), row
        assert all(float(f.replace(",", "")) > 0 for f in figures), row


def test_write_fills_the_http_section_of_the_benchmarks_page(tmp_path, monkeypatch):
    page = tmp_path / "benchmarks.md"
    page.write_text(report.DOC.read_text(encoding="utf-8"), encoding="utf-8")
    monkeypatch.setattr(report, "DOC", page)

    report.write("the figures", marker=bench_http.MARKER)

    begin, end = report.markers(bench_http.MARKER)
    text = page.read_text(encoding="utf-8")
    assert f"{begin}\nthe figures\n{end}" in text
    # The other benchmarks' sections are left as they were.
    for other in ("bench.checkout", "bench.rls"):
        assert report.markers(other)[0] in text
