"""The whole stack over HTTP: gunicorn serving the shop, Locust loading it.

    .venv/bin/python -m bench.http [--scale large] [--users 8] [--run-time 8]
        [--configurations baseline,cached,...] [--endpoints ping,list,...]
        [--slugs 200] [--drop] [--write]

A scratch database (SHOP_HTTP_DB_NAME, default shop_http) is migrated and
seeded at --scale through the seed's own path, as bench/plans.py does, or
reused as it is when its products and variants already number what that
scale seeds. It is kept for the next run; --drop drops it at the end.

Each configuration (CONFIGURATIONS) is a gunicorn server of its own
(scripts/gunicorn.conf.py, production settings, every alias on the scratch
database, a Redis database of the benchmark's own), started with its own
environment; all of them run at once, on free ports. A cell is one endpoint
against one server: Locust headless (bench/locustfile.py), --users users in
a closed loop for --run-time seconds, its figures taken from the moment
every user has started. The cells run endpoint by endpoint, each endpoint
against every server in turn (starting one server further on each time),
so that whatever else the machine does falls on every configuration alike;
checkout, which writes, comes last.

Each configuration differs from the baseline in one switch of
shop/settings/base.py, so each ratio answers one question:

    baseline   no catalog cache; anonymous catalog reads on the replica;
               `default` straight to the primary; pooled connections
    cached     the catalog cache on, and warm (cold against cached)
    primary    every read on the primary (replica against primary)
    pgbouncer  `default` through pgbouncer (direct against pgbouncer)
    unpooled   a connection opened per request (pooled against unpooled)

The baseline runs without the cache: a warm cache answers the catalog reads
from Redis, and the other comparisons would have no database work left to
show. A configuration whose switch the settings do not have, or whose
service is not running, is left out and the report says why.

Before the first cell every server is warmed: each URL a read cell asks for
(every sampled product slug among them) is requested once, which fills the
cache where it is on and opens each worker's connections. Requests/s and
failures are Locust's own, p50 and p99 the nearest-rank percentiles of every
request's time, all written by bench/locustfile.py as Locust quits (its
docstring says why not from Locust's CSV). A failed request fails the run:
the figures of a cell that answered errors would lie.
"""

import argparse
import json
import os
import random
import runpy
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from importlib.metadata import PackageNotFoundError, version
from importlib.util import find_spec
from pathlib import Path
from urllib.parse import urlsplit

import redis
import requests
from django.conf import settings
from django.db import connections
from django.test.utils import setup_databases, teardown_databases
from rest_framework.authtoken.models import Token

from bench import report
from bench.plans import first_staff, skus_in_stock, vacuum_analyze
from catalog.models import LISTED, Product, ProductVariant
from shop import pgbouncer
from shop.accounts.models import Customer
from shop.seeding import (
    plan_for,
    seed_database,
    tables_with_rows,
    truncate_seeded_tables,
)

ROOT = Path(__file__).resolve().parent.parent
LOCUSTFILE = Path(__file__).with_name("locustfile.py")
GUNICORN_CONF = ROOT / "scripts" / "gunicorn.conf.py"
OUT = ROOT / "var" / "bench" / "http"
MARKER = "bench.http"
# A noun of many products' names (catalog/seeding/vocabulary.py), as in
# bench/plans.py: the search ranks a few thousand matches at the large scale.
SEARCH = "lamp"
# Units each buyer's SKU is set to: no checkout of the run can run short.
STOCK = 1_000_000
ADDRESS = {
    "line1": "1 Bench Street",
    "city": "Benchville",
    "postal_code": "12345",
    "country": "US",
}
# Seconds a request of the set-up may take, and a server may take to start.
TIMEOUT = 30
START_SECONDS = 90


class HttpBenchFailed(RuntimeError):
    """The benchmark could not measure what it set out to: the figures would lie."""


@dataclass(frozen=True)
class Endpoint:
    key: str  # its name for --endpoints
    title: str  # its row in the tables
    user: str  # its class in bench/locustfile.py
    request: str  # the name its requests have in Locust's figures
    warm_urls: Callable[[dict], list[str]] = lambda data: []


ENDPOINTS = (
    Endpoint(
        "ping",
        "trivial (`GET /api/v1/ping/`: no database, no Redis)",
        "Ping",
        "GET /api/v1/ping/",
        lambda data: ["/api/v1/ping/"],
    ),
    Endpoint(
        "list",
        "product list",
        "ProductList",
        "GET /api/v1/products/",
        lambda data: ["/api/v1/products/"],
    ),
    Endpoint(
        "price",
        "product list, `ordering=price`",
        "ProductListByPrice",
        "GET /api/v1/products/?ordering=price",
        lambda data: ["/api/v1/products/?ordering=price"],
    ),
    Endpoint(
        "search",
        f"product list, `search={SEARCH}`",
        "ProductSearch",
        "GET /api/v1/products/?search=",
        lambda data: [f"/api/v1/products/?search={data['search']}"],
    ),
    Endpoint(
        "detail",
        "product detail",
        "ProductDetail",
        "GET /api/v1/products/{slug}/",
        lambda data: [f"/api/v1/products/{slug}/" for slug in data["slugs"]],
    ),
    Endpoint("cart", "cart (two lines)", "Cart", "GET /api/v1/cart/"),
    Endpoint(
        "checkout",
        "checkout (after adding a line)",
        "Checkout",
        "POST /api/v1/checkout/",
    ),
)


def pgbouncer_down() -> str | None:
    address = (settings.PGBOUNCER_HOST, settings.PGBOUNCER_PORT)
    try:
        socket.create_connection(address, timeout=2).close()
    except OSError as exc:
        return (
            f"pgbouncer does not answer on {address[0]}:{address[1]} ({exc}); "
            "`scripts/services.sh up` starts it"
        )
    return None


@dataclass(frozen=True)
class Configuration:
    name: str
    what: str
    # Set on top of BASELINE: the switch this configuration turns.
    env: dict = field(default_factory=dict)
    # The settings its switch needs (shop/settings/base.py).
    needs: tuple = ()
    # What else it needs running: None, or why it cannot run now.
    down: Callable[[], str | None] = lambda: None


# Every switch at its baseline value, whatever the shell exports.
BASELINE = {
    "CATALOG_CACHE": "0",
    "REPLICA_READS": "1",
    "DATABASE_VIA_PGBOUNCER": "0",
    "DATABASE_POOL_ENABLED": "1",
}
CONFIGURATIONS = (
    Configuration(
        "baseline",
        "no cache, catalog reads on the replica, the primary direct, pooled",
    ),
    Configuration(
        "cached",
        "the catalog cache on, warmed (`CATALOG_CACHE=1`)",
        {"CATALOG_CACHE": "1"},
        needs=("CATALOG_CACHE",),
    ),
    Configuration(
        "primary",
        "every read on the primary (`REPLICA_READS=0`)",
        {"REPLICA_READS": "0"},
        needs=("REPLICA_READS",),
    ),
    Configuration(
        "pgbouncer",
        "`default` through pgbouncer (`DATABASE_VIA_PGBOUNCER=1`)",
        {"DATABASE_VIA_PGBOUNCER": "1"},
        needs=("DATABASE_VIA_PGBOUNCER", "PGBOUNCER_HOST", "PGBOUNCER_PORT"),
        down=pgbouncer_down,
    ),
    Configuration(
        "unpooled",
        "a connection per request (`DATABASE_POOL_ENABLED=0`)",
        {"DATABASE_POOL_ENABLED": "0"},
        needs=("DATABASE_POOL_ENABLED",),
    ),
)


def unavailable(configuration: Configuration) -> str | None:
    """Why `configuration` cannot run here, or None."""
    missing = [name for name in configuration.needs if not hasattr(settings, name)]
    if missing:
        return f"shop/settings has no {', '.join(missing)} yet"
    return configuration.down()


# --- The scratch database ---------------------------------------------------


def seeded_at(plan) -> bool:
    """Whether the database holds what `plan` seeds (the benchmark adds orders)."""
    return (
        Product.objects.using("loader").count() == plan.products
        and ProductVariant.objects.using("loader").count() == plan.variants
    )


@contextmanager
def scratch_database(name: str, scale: str, *, drop: bool):
    """The migrated database `name`, seeded at `scale`; kept unless `drop`."""
    connections["owner"].settings_dict["TEST"]["NAME"] = name
    config = setup_databases(
        verbosity=0,
        interactive=False,
        keepdb=True,
        aliases={"owner", "default", "loader", "replica", "readonly"},
        serialized_aliases=set(),
    )
    try:
        plan = plan_for(scale)
        if seeded_at(plan):
            print(f"{name}: already seeded at {scale}, reused", flush=True)
        else:
            if tables_with_rows():
                truncate_seeded_tables()
            seeded = seed_database(plan=plan)
            vacuum_analyze()
            print(f"{name}: seeded {scale} in {seeded.seconds:.0f} s", flush=True)
        yield plan
    finally:
        connections.close_all()
        if drop:
            # pgbouncer keeps its server connections after the clients have
            # gone, and DROP DATABASE refuses a database someone is on.
            pgbouncer.release_database(name)
        teardown_databases(config, verbosity=0, keepdb=not drop)


def request_data(*, users: int, slugs: int, configurations) -> dict:
    """What the requests send: slugs, customers' tokens, SKUs to buy.

    A reader per user, whose cart the cart cells read, and a buyer per user
    and configuration, who checks out: no checkout empties a cart that is
    read, and a checkout that went wrong on one server (a pending order
    holds up its customer's next checkouts) cannot fail another's.
    """
    listed = list(
        Product.objects.using("loader")
        .filter(LISTED)
        .order_by("pk")
        .values_list("slug", flat=True)
    )
    needed = users * (1 + len(configurations))
    customers = list(
        Customer.objects.using("loader")
        # A checkout cut short (a run stopped mid-request) leaves a pending
        # order until recovery settles it: its customer sits this run out.
        .exclude(orders__status="pending")
        .order_by("pk")
        .values_list("user_id", flat=True)[:needed]
    )
    # SKUs on sale with stock in hand: buyer i's, topped up before the run,
    # and the readers' two lines.
    skus = list(
        skus_in_stock(10).values_list("variant__sku", flat=True)[: max(users, 2)]
    )
    staff = first_staff()
    if len(customers) < needed or len(skus) < max(users, 2) or staff is None:
        raise HttpBenchFailed(
            f"the seed has {len(customers)} customers without a pending order, "
            f"{len(skus)} SKUs in stock and {'a' if staff else 'no'} staff login: "
            f"{users} users need {needed}, {max(users, 2)} and one; use fewer "
            "--users or configurations"
        )
    tokens = iter([Token.objects.get_or_create(user_id=u)[0].key for u in customers])
    readers = [next(tokens) for _ in range(users)]
    return {
        "search": SEARCH,
        "slugs": random.Random(9).sample(listed, min(slugs, len(listed))),
        "readers": readers,
        "reader_skus": skus[:2],
        "buyer_skus": skus[:users],
        "buyers": {
            configuration.name: [
                {"token": next(tokens), "sku": sku} for sku in skus[:users]
            ]
            for configuration in configurations
        },
        "address": ADDRESS,
        "staff": Token.objects.get_or_create(user=staff)[0].key,
    }


# --- The servers ------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def private_redis_url(variable: str, number: int) -> str:
    """A Redis database of a run's own: `variable`'s URL, else `number` on
    the configured server. Never 0, the development server's: the run
    empties it at the start and the end."""
    url = os.environ.get(
        variable, urlsplit(settings.REDIS_URL)._replace(path=f"/{number}").geturl()
    )
    if urlsplit(url).path.strip("/") in ("", "0"):
        raise HttpBenchFailed(
            f"refusing Redis database 0 ({url}), the development server's: "
            f"name another in {variable}"
        )
    return url


def bench_redis_url() -> str:
    """A Redis database of the benchmark's own, emptied at the start and end."""
    return private_redis_url("SHOP_BENCH_HTTP_REDIS_URL", 12)


def redis_flush(url: str) -> None:
    redis.Redis.from_url(url).flushdb()


@dataclass
class Server:
    configuration: Configuration
    port: int
    log: Path
    process: subprocess.Popen | None = None

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"


def server_env(configuration: Configuration, database: str, redis_url: str):
    """The environment of one configuration's server."""
    return {
        **os.environ,
        # Production's settings: DEBUG off, pools sized for gunicorn's
        # workers; its required secrets are the benchmark's own.
        "DJANGO_SETTINGS_MODULE": "shop.settings.production",
        "DJANGO_SECRET_KEY": "bench-http-only",
        # Plain http on loopback, no TLS in front: production's redirect to
        # https would answer every request with a 301.
        "DJANGO_SECURE_SSL_REDIRECT": "0",
        # The key the seed encrypted with (bench/settings.py's).
        "FIELD_ENCRYPTION_KEYS": settings.FIELD_ENCRYPTION_KEYS,
        "SHOP_DATABASE": database,
        "REDIS_URL": redis_url,
        "CELERY_BROKER_URL": redis_url,
        "LOG_LEVEL": "WARNING",
        "PAYMENT_GATEWAY_DELAY": "0",
        **BASELINE,
        **configuration.env,
    }


def server_start(server: Server, database: str, redis_url: str) -> None:
    with open(server.log, "wb") as log:
        server.process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "gunicorn",
                "--config",
                str(GUNICORN_CONF),
                "--bind",
                f"127.0.0.1:{server.port}",
            ],
            cwd=ROOT,
            env=server_env(server.configuration, database, redis_url),
            stdout=log,
            stderr=subprocess.STDOUT,
        )


def server_wait(server: Server) -> None:
    """Return once the server answers the trivial endpoint."""
    deadline = time.monotonic() + START_SECONDS
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            raise HttpBenchFailed(
                f"gunicorn for {server.configuration.name} exited with "
                f"{server.process.returncode}:\n{tail(server.log)}"
            )
        try:
            if requests.get(f"{server.base}/api/v1/ping/", timeout=5).ok:
                return
        # Refused before gunicorn listens; slow while its workers import
        # Django, several servers at once on a few cores.
        except (requests.ConnectionError, requests.Timeout):
            pass
        time.sleep(0.2)
    raise HttpBenchFailed(
        f"gunicorn for {server.configuration.name} did not answer within "
        f"{START_SECONDS} s:\n{tail(server.log)}"
    )


def server_stop(server: Server) -> None:
    process = server.process
    if process is None or process.poll() is not None:
        return
    process.send_signal(signal.SIGTERM)  # gunicorn's graceful shutdown
    try:
        process.wait(timeout=30)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


@contextmanager
def serving(configurations, *, database: str, redis_url: str, out: Path):
    """A running server per configuration, all at once; stopped on the way out."""
    servers = [
        Server(c, free_port(), out / f"gunicorn-{c.name}.log") for c in configurations
    ]
    with ExitStack() as stack:
        for server in servers:
            stack.callback(server_stop, server)
            server_start(server, database, redis_url)
        for server in servers:
            server_wait(server)
        yield servers


def tail(path: Path, lines: int = 20) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


# --- Set-up and warm-up over HTTP -------------------------------------------


def call(session, method: str, url: str, expect: int, **kwargs):
    response = session.request(method, url, timeout=TIMEOUT, **kwargs)
    if response.status_code != expect:
        raise HttpBenchFailed(
            f"{method} {url} answered {response.status_code}, not {expect}: "
            f"{response.text[:300]}"
        )
    return response.json() if response.content else None


def prepare(base: str, data: dict) -> None:
    """Through the app itself: stock for the buyers, two lines in each reader's cart.

    The stock is set with the staff API, so whatever the app does after a
    stock change (the cache's invalidation) happens as it would.
    """
    with requests.Session() as session:
        staff = {"Authorization": f"Token {data['staff']}"}
        for sku in data["buyer_skus"]:
            call(
                session,
                "PATCH",
                f"{base}/api/v1/stock/{sku}/",
                200,
                json={"quantity_on_hand": STOCK},
                headers=staff,
            )
        for token in data["readers"]:
            auth = {"Authorization": f"Token {token}"}
            cart = call(session, "GET", f"{base}/api/v1/cart/", 200, headers=auth)
            if cart["items"]:
                continue  # filled by an earlier run on this database
            for quantity, sku in enumerate(data["reader_skus"], start=1):
                call(
                    session,
                    "POST",
                    f"{base}/api/v1/cart/items/",
                    201,
                    json={"sku": sku, "quantity": quantity},
                    headers=auth,
                )
        found = call(
            session, "GET", f"{base}/api/v1/products/?search={data['search']}", 200
        )
        if not found["results"]:
            raise HttpBenchFailed(f"search={data['search']} finds no product")


def warm_up(base: str, endpoints, data: dict) -> None:
    with requests.Session() as session:
        for endpoint in endpoints:
            for url in endpoint.warm_urls(data):
                call(session, "GET", base + url, 200)
        if any(e.key == "cart" for e in endpoints):
            for token in data["readers"]:
                call(
                    session,
                    "GET",
                    f"{base}/api/v1/cart/",
                    200,
                    headers={"Authorization": f"Token {token}"},
                )


# --- The cells --------------------------------------------------------------


@dataclass
class Cell:
    endpoint: str
    configuration: str
    requests_per_second: float
    failures: int
    p50: float  # milliseconds
    p99: float
    failure_lines: list = field(default_factory=list)


def locust(
    server: Server,
    user_classes: list[str],
    *,
    users: int,
    seconds: int,
    data_path: Path,
    results: Path,
    reset_stats: bool = True,
) -> subprocess.CompletedProcess:
    """Locust headless against `server`, every user at once; its exit as it is.

    Locust exits 1 when a request failed; the callers decide what that means.
    `reset_stats`: count from the moment the last user has started.
    """
    command = [
        sys.executable,
        "-m",
        "locust",
        "--locustfile",
        str(LOCUSTFILE),
        "--headless",
        "--host",
        server.base,
        "--users",
        str(users),
        # Every user at once: the figures start when the last one has.
        "--spawn-rate",
        str(max(users, 100)),
        "--run-time",
        f"{seconds}s",
        *(["--reset-stats"] if reset_stats else []),
        "--only-summary",
        "--stop-timeout",
        "10",
        "--loglevel",
        "WARNING",
        *user_classes,
    ]
    env = {
        **os.environ,
        "SHOP_BENCH_HTTP_DATA": str(data_path),
        "SHOP_BENCH_HTTP_RESULTS": str(results),
        "SHOP_BENCH_HTTP_CONFIGURATION": server.configuration.name,
    }
    return subprocess.run(
        command,
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=seconds + 120,
        check=False,
    )


def run_cell(server: Server, endpoint: Endpoint, *, users, seconds, data_path, out):
    """Load one endpoint on one server; what Locust counted, and each request's time."""
    name = f"{endpoint.key}-{server.configuration.name}"
    results = out / f"{name}.json"
    results.unlink(missing_ok=True)
    # Locust exits 1 when a request failed: its figures still come, and say so.
    done = locust(
        server,
        [endpoint.user],
        users=users,
        seconds=seconds,
        data_path=data_path,
        results=results,
    )
    (out / f"{name}.log").write_text(done.stdout + done.stderr, encoding="utf-8")
    if done.returncode not in (0, 1) or not results.exists():
        raise HttpBenchFailed(
            f"Locust failed on {endpoint.key} against {server.configuration.name} "
            f"(exit {done.returncode}):\n{done.stderr[-2000:]}"
        )
    figures = json.loads(results.read_text(encoding="utf-8"))
    measured = figures["requests"].get(endpoint.request)
    if measured is None or not measured["times"]:
        raise HttpBenchFailed(
            f"{endpoint.key} against {server.configuration.name}: no request named "
            f"{endpoint.request!r} was timed (bench/locustfile.py names them)"
        )
    return Cell(
        endpoint.key,
        server.configuration.name,
        requests_per_second=measured["per_second"],
        # Every request of the cell: a checkout's line added to the cart too.
        failures=figures["failures"],
        p50=report.percentile(measured["times"], 0.50),
        p99=report.percentile(measured["times"], 0.99),
        failure_lines=[
            f"{e['name']}: {e['error'][:200]} ({e['occurrences']}x)"
            for e in figures["errors"]
        ],
    )


# --- The report -------------------------------------------------------------


def milliseconds(value: float) -> str:
    """Three significant figures or so: 0.96, 12.3, 184."""
    return f"{value:.{2 if value < 10 else 1 if value < 100 else 0}f}"


def render_tables(cells, *, configurations, endpoints) -> str:
    """requests/s, p50 and p99, each with its ratio to the baseline."""
    by_key = {(c.endpoint, c.configuration): c for c in cells}
    names = [c.name for c in configurations]
    baseline = names[0]
    head = "| endpoint | " + " | ".join(names) + " |"
    rule = "| --- |" + " ---: |" * len(names)
    tables = []
    for title, value, fmt in (
        ("requests/s", lambda c: c.requests_per_second, "{:,.0f}".format),
        ("p50 ms", lambda c: c.p50, milliseconds),
        ("p99 ms", lambda c: c.p99, milliseconds),
    ):
        rows = [f"{title} (ratio to {baseline} in brackets)", "", head, rule]
        for endpoint in endpoints:
            base = by_key[(endpoint.key, baseline)]
            cols = []
            for name in names:
                cell = by_key[(endpoint.key, name)]
                text = fmt(value(cell))
                if name != baseline:
                    text += f" ({report.ratio(value(cell), value(base))})"
                cols.append(text)
            rows.append(f"| {endpoint.title} | " + " | ".join(cols) + " |")
        tables.append("\n".join(rows))
    return "\n\n".join(tables)


def render(cells, *, configurations, endpoints, skipped, facts) -> str:
    legend = [f"- **{c.name}**: {c.what}" for c in configurations]
    legend += [f"- **{name}**: not measured: {why}" for name, why in skipped.items()]
    header = (
        f"Measured {facts['when']} on {report.machine()}; PostgreSQL "
        f"{facts['postgres']}; seed {facts['scale']} ({facts['counts']}). "
        f"gunicorn {facts['gunicorn']}: {facts['workers']} workers of "
        f"{facts['threads']} threads (scripts/gunicorn.conf.py), production "
        f"settings; Locust {facts['locust']} on the same machine, "
        f"{facts['users']} users in a closed loop, {facts['seconds']} s per cell, "
        f"figures from the moment every user had started{facts['load']}. "
        f"Command: `{facts['command']}`: {len(cells)} cells, "
        f"{facts['minutes']:.1f} minutes in all."
    )
    tables = render_tables(cells, configurations=configurations, endpoints=endpoints)
    return "\n".join([header, "", *legend, "", tables])


def failure_report(cells) -> str:
    lines = []
    for cell in cells:
        if cell.failures:
            lines.append(
                f"{cell.endpoint} against {cell.configuration}: "
                f"{cell.failures} failed request(s)"
            )
            lines += [f"    {line}" for line in cell.failure_lines]
    return "\n".join(lines)


# --- The run ----------------------------------------------------------------


def pick(argument: str, known: dict, what: str) -> list:
    chosen = [name.strip() for name in argument.split(",") if name.strip()]
    unknown = [name for name in chosen if name not in known]
    if unknown or not chosen:
        raise SystemExit(
            f"unknown {what} {unknown or argument!r}: choose from {', '.join(known)}"
        )
    # In the table's order, whatever the order given.
    return [value for name, value in known.items() if name in chosen]


def parse_args(argv):
    parser = argparse.ArgumentParser(
        prog="python -m bench.http", description=__doc__.splitlines()[0]
    )
    parser.add_argument("--scale", default="large", help="the seed (default large)")
    parser.add_argument(
        "--users",
        type=int,
        default=8,
        help="Locust users per cell, each in a closed loop (default 8)",
    )
    parser.add_argument(
        "--run-time",
        type=int,
        default=8,
        help="seconds per cell (default 8: the 35 cells take about five minutes)",
    )
    parser.add_argument(
        "--configurations",
        default=",".join(c.name for c in CONFIGURATIONS),
        help="comma-separated, from CONFIGURATIONS; the first is the baseline",
    )
    parser.add_argument(
        "--endpoints",
        default=",".join(e.key for e in ENDPOINTS),
        help="comma-separated, from ENDPOINTS",
    )
    parser.add_argument(
        "--slugs",
        type=int,
        default=200,
        help="products the detail cells read, sampled once (default 200)",
    )
    parser.add_argument(
        "--out",
        type=Path,
        default=OUT,
        help="for Locust's figures and logs, and the servers' (default var/bench/http)",
    )
    parser.add_argument(
        "--drop", action="store_true", help="drop the scratch database at the end"
    )
    parser.add_argument(
        "--write", action="store_true", help="also update docs/benchmarks.md"
    )
    args = parser.parse_args(argv)
    if args.users < 1 or args.run_time < 1 or args.slugs < 1:
        parser.error("--users, --run-time and --slugs must be at least 1")
    args.configurations = pick(
        args.configurations, {c.name: c for c in CONFIGURATIONS}, "configurations"
    )
    args.endpoints = pick(args.endpoints, {e.key: e for e in ENDPOINTS}, "endpoints")
    return args


def gunicorn_sizes() -> tuple[int, int]:
    """The workers and threads scripts/gunicorn.conf.py decides here."""
    saved = dict(os.environ)
    try:
        conf = runpy.run_path(str(GUNICORN_CONF))
    finally:  # the file exports its sizes for the settings: not into this process
        os.environ.clear()
        os.environ.update(saved)
    return conf["workers"], conf["threads"]


def package_version(name: str) -> str:
    try:
        return version(name)
    except PackageNotFoundError:
        return "(not installed)"


def main(argv=None) -> int:
    args = parse_args(argv)
    if find_spec("locust") is None or find_spec("gunicorn") is None:
        raise SystemExit(
            "Locust or gunicorn is not installed: `make bench` installs them "
            "(requirements-bench.txt), or run "
            "`.venv/bin/pip install -r requirements-bench.txt`."
        )
    if not settings.REDIS_ENABLED:
        raise SystemExit(
            "REDIS_URL is empty: the servers run with production settings, "
            "which need Redis. Start it (`scripts/services.sh up`)."
        )
    started = time.monotonic()
    load = report.load_average()
    skipped = {}
    configurations = []
    for configuration in args.configurations:
        why = unavailable(configuration)
        if why is None:
            configurations.append(configuration)
        else:
            skipped[configuration.name] = why
            print(f"not measured: {configuration.name}: {why}", flush=True)
    if not configurations or configurations[0].name != args.configurations[0].name:
        raise SystemExit(f"the baseline cannot run: {skipped}")
    database = os.environ.get("SHOP_HTTP_DB_NAME", "shop_http")
    redis_url = bench_redis_url()
    args.out.mkdir(parents=True, exist_ok=True)
    data_path = args.out / "data.json"
    cells = []
    with scratch_database(database, args.scale, drop=args.drop) as plan:
        data = request_data(
            users=args.users, slugs=args.slugs, configurations=configurations
        )
        data_path.write_text(json.dumps(data), encoding="utf-8")
        postgres = report.server_facts(connections["default"])["version"]
        connections.close_all()  # a kept database is dropped by no one; tidy anyway
        redis_flush(redis_url)
        try:
            with serving(
                configurations, database=database, redis_url=redis_url, out=args.out
            ) as servers:
                prepare(servers[0].base, data)
                # What the set-up cached or marked is not the warm-up's.
                redis_flush(redis_url)
                for server in servers:
                    warm_up(server.base, args.endpoints, data)
                print(
                    f"serving {len(servers)} configurations; "
                    f"{len(args.endpoints) * len(servers)} cells of "
                    f"{args.run_time} s",
                    flush=True,
                )
                for turn, endpoint in enumerate(args.endpoints):
                    # Each endpoint starts with the next server: none is
                    # always first after the set-up or after another's load.
                    start = turn % len(servers)
                    for server in servers[start:] + servers[:start]:
                        cell = run_cell(
                            server,
                            endpoint,
                            users=args.users,
                            seconds=args.run_time,
                            data_path=data_path,
                            out=args.out,
                        )
                        print(
                            f"  {endpoint.key:8} {server.configuration.name:9} "
                            f"{cell.requests_per_second:8.0f}/s  p50 {cell.p50:6.1f} "
                            f"p99 {cell.p99:6.1f} ms  failed {cell.failures}",
                            flush=True,
                        )
                        cells.append(cell)
        finally:
            redis_flush(redis_url)
    workers, threads = gunicorn_sizes()
    text = render(
        cells,
        configurations=configurations,
        endpoints=args.endpoints,
        skipped=skipped,
        facts={
            "when": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
            "postgres": postgres,
            "scale": args.scale,
            "counts": ", ".join(f"{n:,} {what}" for what, n in plan.counts.items()),
            "gunicorn": package_version("gunicorn"),
            "workers": workers,
            "threads": threads,
            "locust": package_version("locust"),
            "users": args.users,
            "seconds": args.run_time,
            "load": (
                f"; load average {load:.2f} at the start" if load is not None else ""
            ),
            "command": " ".join(["python -m bench.http", *(argv or sys.argv[1:])]),
            "minutes": (time.monotonic() - started) / 60,
        },
    )
    print(text)
    failed = failure_report(cells)
    if failed:
        print(f"\nRequests failed; the figures are not written:\n{failed}")
        print(f"The servers' logs: {args.out}/gunicorn-*.log", file=sys.stderr)
        return 1
    if args.write:
        path = report.write(text, marker=MARKER)
        print(f"updated {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
