"""`make report`: a short load on a scratch database, and pgBadger's report of it.

    .venv/bin/python -m bench.pgbadger_report [--users 6] [--seconds 20]
        [--scale small] [--out var/report] [--write]

A scratch database (SHOP_REPORT_DB_NAME, default shop_report) is migrated
and seeded at --scale the way the HTTP benchmark does it (bench/http.py),
and the cluster superuser sets `log_min_duration_statement = 0` on it, for
that database only: every statement of the run is logged with its duration,
while the dev database keeps scripts/pg/logging.conf's threshold. One
gunicorn server (the benchmark's baseline configuration) serves it, and
Locust runs --users users for --seconds seconds over a mix of its
scenarios (bench/locustfile.py): catalog reads, a cart, checkouts.

Then, so that the report's other sections have something in them: two of
the app's sessions fight over one stock row for longer than
deadlock_timeout (a lock wait), a sort runs with too little work_mem (a
temporary file), and the superuser asks for a CHECKPOINT.

The log's byte offsets before and after the run bound what pgBadger reads;
of that slice only this database's entries and the checkpointer's are kept
(shop/pglog.py:of_database), so whatever else the cluster did meanwhile
stays out. The slice goes to --out/postgresql.log, the report to
--out/pgbadger.html, and, when Debian's chromium is installed, a screenshot
of its top queries to --out/pgbadger-top-queries.png (--write also copies
it to docs/chapters/img/). The run fails if the report has no queries.
The scratch database is always dropped.
"""

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import threading
import time
from importlib.util import find_spec
from pathlib import Path

from django.conf import settings
from django.db import connections
from psycopg import sql

from bench import http as bench_http
from shop import pgaudit, pglog
from shop.lab import connect
from shop.local_clusters import superuser as cluster_superuser

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "var" / "report"
DOCS_IMAGE = ROOT / "docs" / "chapters" / "img" / "pgbadger-top-queries.png"
CHROMIUM = "/usr/bin/chromium"
# Locust's classes the load mixes, one user each in turn: every endpoint
# that reaches the database (Ping does not).
SCENARIO = (
    "ProductList",
    "ProductListByPrice",
    "ProductSearch",
    "ProductDetail",
    "Cart",
    "Checkout",
)
# The smallest work_mem there is: a sort of a few hundred rows spills.
SMALL_WORK_MEM = "64kB"
SPILLING_SORT = """
SELECT v.sku, p.name, p.description
FROM catalog_product_variant AS v
JOIN catalog_product AS p ON p.id = v.product_id
ORDER BY p.description, v.sku
"""
FIRST_STOCK_ROW = "SELECT id FROM catalog_stock_level ORDER BY id LIMIT 1 FOR UPDATE"
THAT_STOCK_ROW = "SELECT id FROM catalog_stock_level WHERE id = %s FOR UPDATE"
# Longer than deadlock_timeout (1 s), after which a wait is logged.
LOCK_HOLD_SECONDS = 1.5


QUERY_COUNT = re.compile(
    r'<span class="figure">([0-9][0-9,]*)</span> '
    r'<span class="figure-label">Number of queries</span>'
)
# (what pgBadger 12 writes, what the screenshot's copy has instead)
SHOW_TOP_QUERIES = (
    (
        '<li class="slide active-slide" id="overview-slide">',
        '<li class="slide" id="overview-slide">',
    ),
    (
        '<li class="slide" id="topqueries-slide" style="display:none;">',
        '<li class="slide active-slide" id="topqueries-slide">',
    ),
    (
        "</head>",
        "<style>#histogram-query-times, #slowest-individual-queries "
        "{display: none}</style></head>",
    ),
)


class ReportFailed(RuntimeError):
    """The run or pgBadger did not produce a report worth reading."""


def superuser():
    """The cluster superuser on the primary, over its Unix socket."""
    return cluster_superuser(int(connections["owner"].settings_dict["PORT"]))


def log_everything(database: str) -> None:
    with superuser() as admin:
        admin.execute(
            sql.SQL("ALTER DATABASE {} SET log_min_duration_statement = 0").format(
                sql.Identifier(database)
            )
        )


def report_redis_url() -> str:
    """A Redis database of the report's own, emptied at the start and the end.

    Number 9: the suite, the benchmarks and the security pass use 10 to 15,
    and the development server 0.
    """
    return bench_http.private_redis_url("SHOP_REPORT_REDIS_URL", 9)


def run_load(server, *, users: int, seconds: int, data_path: Path, out: Path):
    """Locust headless against `server`, the scenario's classes at once."""
    # Every request counts here, the ramp-up too: the log is what is read.
    done = bench_http.locust(
        server,
        list(SCENARIO),
        users=users,
        seconds=seconds,
        data_path=data_path,
        results=out / "locust.json",
        reset_stats=False,
    )
    (out / "locust.log").write_text(done.stdout + done.stderr, encoding="utf-8")
    # Locust exits 1 when a request failed: a report of a broken run would lie.
    if done.returncode != 0:
        raise ReportFailed(
            f"Locust exited with {done.returncode}; see {out / 'locust.log'}:\n"
            f"{done.stderr[-2000:]}"
        )


def lock_wait() -> None:
    """Two of the app's sessions want one stock row; the second waits, then gets it."""
    with connect("default") as holder, connect("default") as waiter:
        (row_id,) = holder.execute(FIRST_STOCK_ROW).fetchone()
        release = threading.Timer(LOCK_HOLD_SECONDS, holder.rollback)
        release.start()
        try:
            waiter.execute(THAT_STOCK_ROW, [row_id])  # blocks until the rollback
            waiter.rollback()
        finally:
            release.join()


def spilling_sort() -> None:
    """A sort with too little memory, which writes a temporary file."""
    with connect("default") as session:
        session.execute(
            "SELECT set_config('work_mem', %s, true)", [SMALL_WORK_MEM]
        ).fetchone()
        session.execute(SPILLING_SORT).fetchall()
        session.rollback()


def checkpoint() -> None:
    with superuser() as admin:
        admin.execute("CHECKPOINT")


def check_report(html: Path) -> int:
    """The number of queries pgBadger found; fail unless it listed the top ones."""
    text = html.read_text(encoding="utf-8", errors="replace")
    found = QUERY_COUNT.search(text)
    count = int(found.group(1).replace(",", "")) if found else 0
    if count == 0 or 'id="time-consuming-queries-table"' not in text:
        raise ReportFailed(
            f"{html} lists no queries: pgBadger parsed none of the log. Does the "
            "prefix it was given match log_line_prefix? Were statements logged?"
        )
    return count


def top_queries_page(html: Path, page: Path) -> bool:
    """A copy of the report that opens on Top Queries, the most time-consuming first.

    pgBadger shows one section at a time and picks it with JavaScript, so the
    copy marks another section as the one to show. False if this version of
    pgBadger's page is not laid out as expected.
    """
    text = html.read_text(encoding="utf-8", errors="replace")
    if not all(text.count(old) == 1 for old, _ in SHOW_TOP_QUERIES):
        return False
    for old, new in SHOW_TOP_QUERIES:
        text = text.replace(old, new)
    page.write_text(text, encoding="utf-8")
    return True


def screenshot(html: Path, png: Path) -> bool:
    """Chromium's headless picture of the report's top queries; False without it."""
    page = html.with_name("pgbadger-top-queries.html")
    if not os.access(CHROMIUM, os.X_OK) or not top_queries_page(html, page):
        return False
    png.unlink(missing_ok=True)
    subprocess.run(
        [
            CHROMIUM,
            "--headless",
            "--disable-gpu",
            "--no-sandbox",  # chromium refuses to run as root (CI) without it
            "--hide-scrollbars",
            "--window-size=1400,1800",
            f"--screenshot={png}",
            page.as_uri(),
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    return png.is_file()


def parse_args(argv):
    parser = argparse.ArgumentParser(
        prog="python -m bench.pgbadger_report", description=__doc__.splitlines()[0]
    )
    parser.add_argument("--scale", default="small", help="the seed (default small)")
    parser.add_argument("--users", type=int, default=6, help="Locust users (default 6)")
    parser.add_argument(
        "--seconds", type=int, default=20, help="how long the load runs (default 20)"
    )
    parser.add_argument(
        "--slugs", type=int, default=50, help="products the detail reads (default 50)"
    )
    parser.add_argument(
        "--out", type=Path, default=OUT, help="where it all goes (default var/report)"
    )
    parser.add_argument(
        "--write",
        action="store_true",
        help=f"also copy the screenshot to {DOCS_IMAGE.relative_to(ROOT)}",
    )
    args = parser.parse_args(argv)
    if args.users < 1 or args.seconds < 1 or args.slugs < 1:
        parser.error("--users, --seconds and --slugs must be at least 1")
    return args


def preflight() -> Path:
    """The primary's log file, once everything the run needs is known to be here."""
    if find_spec("locust") is None or find_spec("gunicorn") is None:
        raise SystemExit(
            "Locust or gunicorn is not installed: `make report` installs them "
            "(requirements-bench.txt)."
        )
    if pglog.pgbadger_path() is None:
        raise SystemExit("pgbadger is not installed: apt-get install pgbadger")
    if not settings.REDIS_ENABLED:
        raise SystemExit(
            "REDIS_URL is empty: the server runs with production settings, "
            "which need Redis. Start it (`scripts/services.sh up`)."
        )
    log = pgaudit.server_log()
    if log is None:
        raise SystemExit(
            "no var/log/primary.log: the report reads the log of the local "
            "primary that scripts/services.sh starts"
        )
    return log


def record(database: str, args, log: Path, run_dir: Path) -> str:
    """Load the scratch database and return what the primary logged meanwhile."""
    baseline = bench_http.CONFIGURATIONS[0]
    redis_url = report_redis_url()
    data_path = run_dir / "data.json"
    data = bench_http.request_data(
        users=args.users, slugs=args.slugs, configurations=[baseline]
    )
    data_path.write_text(json.dumps(data), encoding="utf-8")
    connections.close_all()
    # Before the server connects: the setting applies to new sessions.
    log_everything(database)
    bench_http.redis_flush(redis_url)
    try:
        with bench_http.serving(
            [baseline], database=database, redis_url=redis_url, out=run_dir
        ) as (server,):
            bench_http.prepare(server.base, data)
            bench_http.redis_flush(redis_url)
            bench_http.warm_up(server.base, bench_http.ENDPOINTS, data)
            since = pgaudit.log_end(log)
            print(f"load: {args.users} users for {args.seconds} s", flush=True)
            run_load(
                server,
                users=args.users,
                seconds=args.seconds,
                data_path=data_path,
                out=run_dir,
            )
        print("a lock wait, a temporary file, a checkpoint", flush=True)
        lock_wait()
        spilling_sort()
        checkpoint()
        return pgaudit.log_text(log, since)
    finally:
        connections.close_all()
        bench_http.redis_flush(redis_url)


def main(argv=None) -> int:
    args = parse_args(argv)
    log = preflight()
    started = time.monotonic()
    database = os.environ.get("SHOP_REPORT_DB_NAME", "shop_report")
    run_dir = args.out / "run"
    run_dir.mkdir(parents=True, exist_ok=True)
    with bench_http.scratch_database(database, args.scale, drop=True):
        logged = record(database, args, log, run_dir)
        prefix = pglog.line_prefix("owner")
    kept = pglog.of_database(pglog.entries(logged), database)
    sliced = args.out / "postgresql.log"
    sliced.write_text("".join(kept), encoding="utf-8")
    html = pglog.pgbadger(sliced, args.out / "pgbadger.html", prefix=prefix)
    count = check_report(html)
    print(f"{len(kept)} log entries of {database}, {count} queries -> {html}")
    png = args.out / DOCS_IMAGE.name
    if screenshot(html, png):
        print(f"screenshot: {png}")
        if args.write:
            DOCS_IMAGE.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(png, DOCS_IMAGE)
            print(f"updated {DOCS_IMAGE.relative_to(ROOT)}")
    else:
        print(
            f"no screenshot: {CHROMIUM} is not installed (apt-get install "
            "chromium), or the report is not laid out as pgBadger 12's"
        )
    print(f"{time.monotonic() - started:.0f} s in all")
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except (ReportFailed, pglog.PgBadgerFailed, bench_http.HttpBenchFailed) as exc:
        sys.exit(f"make report failed: {exc}")
