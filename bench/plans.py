"""`make plans`: the hot queries' plans on the large seed, checked and kept.

    .venv/bin/python -m bench.plans [--scale large] [--repeat 15] [--deep-page 50]
        [--max-seq-rows 10000] [--snippets docs/snippets/plans] [--no-write]

A scratch database (bench/settings.py; SHOP_PLANS_DB_NAME, default
shop_plans) is migrated and seeded at --scale through the seed's own path,
then vacuumed and analysed, as autovacuum would have left a database that
has been running, and the replica is given time to replay it all
(--replay-timeout). Then every hot request is made through the API, in
process, as the role and with the context the app really uses (anonymous,
a customer under row-level security, staff):

    the product list, plain and with each filter and ordering, and a few of
    their combinations, each on its first page and on page --deep-page
    (reached by following the `next` links); product detail; the cart, a
    line added; the order list (first and last page) and an order's
    detail; a whole checkout; a staff price change

While a request runs, each statement it sends is first run under
`EXPLAIN (ANALYZE, BUFFERS)` in a savepoint that is rolled back (inside a
transaction of its own when there is none), then for real: the SQL is the
code's own, captured as it runs, never retyped. A plan that reads a table
of more than --max-seq-rows rows (pg_class.reltuples) with a sequential
scan fails the run: the exit status is 1 and the offending statements are
printed.

Each read is then timed --repeat times two ways, after the plans were
taken: the whole request in process (what a client waits for, less the
network and the web server), and its statements alone, replayed in one
transaction (the database's part). The table printed at the end has both,
with the ratios the read path's targets are about: each filter and ordering
against the plain list (2x; relevance-ranked search 3x) and a deep page
against the first (1.5x). The plans go to --snippets, one file per request,
for chapters 06 and 14, and the table to summary.md beside them.
"""

import argparse
import json
import os
import re
import statistics
import sys
import time
import uuid
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import psycopg
from django.conf import settings
from django.core.signals import request_finished, request_started
from django.db import close_old_connections, connections
from django.db.models import Count, F, Sum
from django.test.utils import override_settings
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from bench import report
from bench.checkout import scratch_database
from catalog.models import ProductVariant, StockLevel
from orders.models import Order
from shop import replica
from shop.accounts.models import Customer as CustomerModel
from shop.accounts.models import User
from shop.seeding import plan_for, seed_database
from shop.snapshots import pretty_sql

SNIPPETS = Path(__file__).resolve().parent.parent / "docs" / "snippets" / "plans"
# Statements worth a plan: reads and writes of rows. The context's
# set_config() calls and transaction control are not.
# SQL from a .sql file starts with its comments.
LEADING_COMMENTS = re.compile(r"^(?:\s+|--[^\n]*(?:\n|$)|/\*.*?\*/)*", re.DOTALL)
EXPLAINED = re.compile(r"(SELECT|WITH|INSERT|UPDATE|DELETE)\b", re.IGNORECASE)
CONTEXT_ONLY = re.compile(r"SELECT\s+set_config\(", re.IGNORECASE)
SEQ_SCAN = re.compile(r"Seq Scan on (\w+)")
SAVEPOINT = "bench_plans"

# The product list: (file name, what it is, query string). The first is the
# baseline every other one is compared with.
PLAIN = "product-list"
PRODUCT_LISTS = [
    (PLAIN, "plain (newest first)", ""),
    ("product-list-oldest", "ordering=oldest", "ordering=oldest"),
    ("product-list-price", "ordering=price", "ordering=price"),
    ("product-list-price-desc", "ordering=-price", "ordering=-price"),
    ("product-list-name", "ordering=name", "ordering=name"),
    ("product-list-name-desc", "ordering=-name", "ordering=-name"),
    ("product-list-category-leaf", "category (a leaf)", "category=desk-lamps"),
    ("product-list-category-root", "category (a root)", "category=outdoors"),
    (
        "product-list-category-price",
        "category (a leaf), ordering=price",
        "category=desk-lamps&ordering=price",
    ),
    (
        "product-list-category-price-desc",
        "category (a root), ordering=-price",
        "category=outdoors&ordering=-price",
    ),
    # The hard case: a subtree of a few leaves, its prices at the cheap end,
    # most expensive first (no single index holds it in that order).
    (
        "product-list-category-middle-price-desc",
        "category (a middle one), ordering=-price",
        "category=lighting&ordering=-price",
    ),
    ("product-list-search", "search, ranked (relevance)", "search=lamp"),
    ("product-list-search-typing", "search as typed, ranked", "search=walnut+des"),
    (
        "product-list-search-newest",
        "search, ordering=newest",
        "search=lamp&ordering=newest",
    ),
    ("product-list-min-price", "min_price", "min_price=100"),
    (
        "product-list-price-range",
        "min_price and max_price, ordering=price",
        "min_price=20&max_price=40&ordering=price",
    ),
    ("product-list-in-stock", "in_stock=true", "in_stock=true"),
    ("product-list-out-of-stock", "in_stock=false", "in_stock=false"),
]
RANKED = {"product-list-search", "product-list-search-typing"}
ADDRESS = {
    "line1": "1 Plan Street",
    "city": "Planville",
    "postal_code": "12345",
    "country": "US",
}


class PlansFailed(RuntimeError):
    """A request did not answer as it should: its plans would show nothing real."""


@dataclass
class Statement:
    alias: str
    sql: str  # as sent: the driver's parameters already in place
    plan: str | None = None  # None: not a statement worth a plan
    analyzed: bool = True


@dataclass
class Request:
    name: str  # the snippet's file name, without .txt
    title: str
    method: str
    url: str
    statements: list = field(default_factory=list)
    request_seconds: list = field(default_factory=list)
    sql_seconds: list = field(default_factory=list)
    page: int = 1
    read_only: bool = True
    client: object = None  # the APIClient it was made with: anonymous, customer

    @property
    def explained(self):
        return [s for s in self.statements if s.plan is not None]


class Explainer:
    """An execute wrapper: EXPLAIN (ANALYZE, BUFFERS) each statement, then run it."""

    def __init__(self):
        self.statements: list[Statement] = []

    def __call__(self, execute, sql, params, many, context):
        alias = context["connection"].alias
        raw = context["cursor"].cursor  # psycopg's own: no wrapper runs again
        text = context["connection"].ops.compose_sql(sql, params) if params else sql
        statement = Statement(alias, text)
        code = LEADING_COMMENTS.sub("", sql, count=1)
        if not many and EXPLAINED.match(code) and not CONTEXT_ONLY.match(code):
            statement.plan, statement.analyzed = explain(raw, sql, params)
        self.statements.append(statement)
        return execute(sql, params, many, context)


def explain(raw, sql, params) -> tuple[str, bool]:
    """The statement's plan, from a run that leaves no trace.

    Inside the request's transaction the run is a savepoint rolled back;
    outside one, a transaction of its own, rolled back. A statement that
    fails when run twice (a unique key it has just claimed) gets the plan
    without ANALYZE.
    """
    inside = raw.connection.info.transaction_status != psycopg.pq.TransactionStatus.IDLE
    begin = f"SAVEPOINT {SAVEPOINT}" if inside else "BEGIN"
    undo = f"ROLLBACK TO SAVEPOINT {SAVEPOINT}" if inside else "ROLLBACK"
    raw.execute(begin)
    try:
        try:
            raw.execute("EXPLAIN (ANALYZE, BUFFERS) " + sql, params)
            analyzed = True
        except psycopg.Error:
            raw.execute(undo)
            raw.execute(begin)
            raw.execute("EXPLAIN " + sql, params)
            analyzed = False
        plan = "\n".join(row[0] for row in raw.fetchall())
    finally:
        raw.execute(undo)
        if inside:
            raw.execute(f"RELEASE SAVEPOINT {SAVEPOINT}")
    return plan, analyzed


@contextmanager
def explaining(aliases):
    explainer = Explainer()
    with ExitStack() as stack:
        for alias in aliases:
            stack.enter_context(connections[alias].execute_wrapper(explainer))
        yield explainer


class Shop:
    """The API, in process, as anonymous, a customer and staff."""

    def __init__(self, aliases):
        self.aliases = aliases
        self.anonymous = APIClient()
        self.customer = APIClient()
        self.staff = APIClient()

    def log_in(self, customer_user_id: int, staff_user_id: int) -> None:
        for client, user_id in (
            (self.customer, customer_user_id),
            (self.staff, staff_user_id),
        ):
            token, _ = Token.objects.get_or_create(user_id=user_id)
            client.credentials(HTTP_AUTHORIZATION=f"Token {token.key}")

    def call(self, client, method, url, body=None, headers=None):
        response = client.generic(
            method,
            url,
            data=b"" if body is None else json.dumps(body).encode(),
            content_type="application/json",
            **{
                f"HTTP_{k.upper().replace('-', '_')}": v
                for k, v in (headers or {}).items()
            },
        )
        if response.status_code >= 300:
            raise PlansFailed(
                f"{method} {url} answered {response.status_code}: "
                f"{response.content[:300]!r}"
            )
        return response

    def capture(self, request: Request, client, body=None, headers=None):
        request.client = client
        with explaining(self.aliases) as explainer:
            response = self.call(client, request.method, request.url, body, headers)
        request.statements = explainer.statements
        return response


def follow(shop, client, url, pages):
    """The URL of page `pages` + 1 (or of the last page), and its number."""
    page = 1
    for _ in range(pages):
        following = shop.call(client, "GET", url).json()["next"]
        if following is None:
            break
        url, page = following, page + 1
    return url, page


def product_list_reads(shop, deep_page) -> list[Request]:
    reads = []
    for name, title, query in PRODUCT_LISTS:
        url = f"/api/v1/products/?{query}" if query else "/api/v1/products/"
        first = Request(name, title, "GET", url)
        shop.capture(first, shop.anonymous)
        deep_url, page = follow(shop, shop.anonymous, url, deep_page - 1)
        deep = Request(
            f"{name}-deep", f"{title}, page {page}", "GET", deep_url, page=page
        )
        shop.capture(deep, shop.anonymous)
        reads += [first, deep]
    return reads


@dataclass
class Customer:
    """Whom the customer's requests are made as, and what they buy."""

    sku: str
    other_sku: str
    slug: str
    order_id: int


def skus_in_stock(at_least: int):
    """The seed's SKUs on sale with `at_least` units free, in SKU order (values)."""
    return (
        StockLevel.objects.using("loader")
        .filter(variant__is_active=True, variant__product__is_active=True)
        .values("variant__sku")
        .annotate(free=Sum(F("quantity_on_hand") - F("reserved")))
        .filter(free__gte=at_least)
        .order_by("variant__sku")
    )


def first_staff():
    """The seed's first staff login, or None."""
    return User.objects.using("loader").filter(is_staff=True).order_by("pk").first()


def customer_setup(shop) -> Customer:
    """Log in as the seeded customer with the most orders, and as staff."""
    busiest = (
        Order.objects.using("loader")
        .values("customer_id")
        .annotate(n=Count("id"))
        .order_by("-n", "customer_id")
        .first()
    )
    customer = CustomerModel.objects.using("loader").get(pk=busiest["customer_id"])
    staff = first_staff()
    if staff is None:
        raise PlansFailed("the seed made no staff login (shop/accounts/seeding)")
    shop.log_in(customer.user_id, staff.pk)
    # Two SKUs with plenty on hand, so that the checkout sells without a doubt.
    (sku, slug), (other_sku, _) = skus_in_stock(50).values_list(
        "variant__sku", "variant__product__slug"
    )[:2]
    order_id = (
        Order.objects.using("loader")
        .filter(customer=customer)
        .order_by("-created_at", "-id")
        .values_list("pk", flat=True)[0]
    )
    return Customer(sku, other_sku, slug, order_id)


def customer_reads(shop, who: Customer) -> list[Request]:
    """Product detail, a line added to the cart, the cart, the orders."""
    detail = Request(
        "product-detail", "product detail", "GET", f"/api/v1/products/{who.slug}/"
    )
    shop.capture(detail, shop.anonymous)
    add = Request(
        "cart-add", "cart: add a line", "POST", "/api/v1/cart/items/", read_only=False
    )
    shop.capture(add, shop.customer, {"sku": who.sku, "quantity": 1})
    shop.call(
        shop.customer,
        "POST",
        "/api/v1/cart/items/",
        {"sku": who.other_sku, "quantity": 2},
    )
    cart = Request("cart", "cart (two lines)", "GET", "/api/v1/cart/")
    shop.capture(cart, shop.customer)
    orders = Request("order-list", "order list", "GET", "/api/v1/orders/?page_size=2")
    shop.capture(orders, shop.customer)
    last_url, page = follow(shop, shop.customer, orders.url, 1_000)
    last = Request(
        "order-list-deep",
        f"order list, page {page} (the last)",
        "GET",
        last_url,
        page=page,
    )
    shop.capture(last, shop.customer)
    order = Request(
        "order-detail", "order detail", "GET", f"/api/v1/orders/{who.order_id}/"
    )
    shop.capture(order, shop.customer)
    return [detail, add, cart, orders, last, order]


def customer_writes(shop, who: Customer) -> list[Request]:
    """A whole checkout of the cart, then a staff price change."""
    checkout = Request(
        "checkout", "checkout (two lines)", "POST", "/api/v1/checkout/", read_only=False
    )
    shop.capture(
        checkout,
        shop.customer,
        {"shipping_address": ADDRESS, "payment_token": "tok_ok"},
        {"Idempotency-Key": str(uuid.uuid4())},
    )
    price = ProductVariant.objects.using("loader").get(sku=who.sku).price
    reprice = Request(
        "variant-price-change",
        "staff: a variant's price changes (min_price follows)",
        "PATCH",
        f"/api/v1/variants/{who.sku}/",
        read_only=False,
    )
    shop.capture(reprice, shop.staff, {"price": str(price + 1)})
    return [checkout, reprice]


def time_reads(shop, requests, repeat) -> None:
    """Time each read, the request and its statements apart, rounds interleaved."""
    reads = [r for r in requests if r.read_only]
    for _ in range(repeat):
        for read in reads:
            started = time.perf_counter()
            shop.call(read.client, read.method, read.url)
            read.request_seconds.append(time.perf_counter() - started)
            read.sql_seconds.append(replay(read))


def replay(read: Request) -> float:
    """Run the read's statements again, as sent, in one transaction; return seconds."""
    by_alias = {}
    for statement in read.statements:
        by_alias.setdefault(statement.alias, []).append(statement.sql)
    elapsed = 0.0
    for alias, statements in by_alias.items():
        connections[alias].ensure_connection()
        raw = connections[alias].connection
        started = time.perf_counter()
        with raw.transaction(force_rollback=True), raw.cursor() as cursor:
            for sql in statements:
                cursor.execute(sql)
                if cursor.description is not None:
                    cursor.fetchall()
        elapsed += time.perf_counter() - started
    return elapsed


def seq_scans(requests, max_rows) -> list[str]:
    """Every sequential scan of a table with more than `max_rows` rows."""
    with connections["owner"].cursor() as cursor:
        cursor.execute(
            "SELECT relname, reltuples FROM pg_class "
            "WHERE relkind IN ('r', 'p') AND relnamespace = 'public'::regnamespace"
        )
        rows = dict(cursor.fetchall())
    found = []
    for request in requests:
        for statement in request.explained:
            for table in SEQ_SCAN.findall(statement.plan):
                if rows.get(table, 0) > max_rows:
                    found.append(
                        f"{request.name}: Seq Scan on {table} "
                        f"({rows[table]:,.0f} rows) in\n    {statement.sql[:300]}"
                    )
    return found


def vacuum_analyze() -> None:
    """Leave the tables as autovacuum would: visibility map set, statistics fresh."""
    with connections["owner"].cursor() as cursor:
        cursor.execute(
            "SELECT relname FROM pg_class WHERE relkind = 'r' "
            "AND relnamespace = 'public'::regnamespace "
            "AND relowner = current_user::regrole "
            "ORDER BY relname"
        )
        tables = [name for (name,) in cursor.fetchall()]
        for table in tables:
            cursor.execute(
                f"VACUUM (ANALYZE) {connections['owner'].ops.quote_name(table)}"
            )


def median_ms(seconds) -> float | None:
    return statistics.median(seconds) * 1000 if seconds else None


def fmt(value, digits=1) -> str:
    return "" if value is None else f"{value:.{digits}f}"


def table(requests) -> str:
    """The timings and the ratios the targets are about, as Markdown."""
    by_name = {r.name: r for r in requests}
    plain = by_name.get(PLAIN)
    rows = [
        "| request | page | request ms | SQL ms | request / plain list "
        "| SQL / plain list | deep / first (request) | target |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | --- |",
    ]
    for request in requests:
        req, sql = median_ms(request.request_seconds), median_ms(request.sql_seconds)
        versus = versus_sql = deep = ""
        target = ""
        deep_page = request.name.endswith("-deep")
        is_list = request.name.startswith("product-list") and not deep_page
        if is_list and plain is not None and request is not plain:
            versus = fmt(req / median_ms(plain.request_seconds), 2)
            versus_sql = fmt(sql / median_ms(plain.sql_seconds), 2)
            target = "3x" if request.name in RANKED else "2x"
        if deep_page and request.page > 1:
            first = by_name.get(request.name.removesuffix("-deep"))
            if first is not None and first.request_seconds:
                deep = fmt(req / median_ms(first.request_seconds), 2)
                target = "1.5x"
        rows.append(
            f"| {request.title} | {request.page} | {fmt(req)} | {fmt(sql)} | {versus} "
            f"| {versus_sql} | {deep} | {target} |"
        )
    return "\n".join(rows)


def snippet(request: Request, header: str) -> str:
    parts = [f"-- {request.method} {request.url}", f"-- {request.title}", header, ""]
    for number, statement in enumerate(request.explained, start=1):
        note = "" if statement.analyzed else " (plan only: run twice, it fails)"
        parts += [
            f"-- statement {number} of {len(request.explained)}, "
            f"on {statement.alias}{note}",
            pretty_sql(statement.sql) + ";",
            "",
            statement.plan,
            "",
        ]
    return "\n".join(parts).rstrip() + "\n"


def write_snippets(directory: Path, requests, header: str, summary: str) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    for stale in directory.glob("*.txt"):
        stale.unlink()
    for request in requests:
        (directory / f"{request.name}.txt").write_text(
            snippet(request, header), encoding="utf-8"
        )
    (directory / "summary.md").write_text(summary + "\n", encoding="utf-8")


def parse_args(argv):
    parser = argparse.ArgumentParser(
        prog="python -m bench.plans", description=__doc__.splitlines()[0]
    )
    env = os.environ.get
    parser.add_argument("--scale", default=env("PLANS_SCALE", "large"))
    parser.add_argument(
        "--repeat",
        type=int,
        default=int(env("PLANS_REPEAT", "15")),
        help="timed runs of each read (the median is shown)",
    )
    parser.add_argument(
        "--deep-page",
        type=int,
        default=int(env("PLANS_DEEP_PAGE", "50")),
        help="the page of each product list that counts as deep",
    )
    parser.add_argument(
        "--max-seq-rows",
        type=int,
        default=int(env("PLANS_MAX_SEQ_ROWS", "10000")),
        help="a sequential scan of a larger table fails the run",
    )
    parser.add_argument(
        "--replay-timeout",
        type=float,
        default=float(env("PLANS_REPLAY_TIMEOUT", "600")),
        help="seconds to wait for the replica to replay the seed before timing",
    )
    parser.add_argument("--snippets", type=Path, default=SNIPPETS)
    parser.add_argument("--no-write", action="store_true", help="write no snippets")
    return parser.parse_args(argv)


def collect(*, deep_page: int, repeat: int, aliases) -> list[Request]:
    """Every hot request's plans and timings, on the database at hand.

    The reads are timed before the checkout, which empties the cart.
    """
    shop = Shop(aliases)
    who = customer_setup(shop)
    reads = product_list_reads(shop, deep_page) + customer_reads(shop, who)
    time_reads(shop, reads, repeat)
    return reads + customer_writes(shop, who)


@contextmanager
def app_conditions():
    """Requests in process as a server makes them, the cache out of the way.

    A server keeps its connections between requests, where Django's own
    request signals would close them after each (CONN_MAX_AGE 0 here) and
    every timing would include a TLS handshake. No cache: the plans are
    the database's, and a cached answer would have none.
    """
    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    dummy = {"default": {"BACKEND": "django.core.cache.backends.dummy.DummyCache"}}
    # The test client's host name, which DEBUG off refuses otherwise.
    hosts = [*settings.ALLOWED_HOSTS, "testserver"]
    try:
        with override_settings(CACHES=dummy, ALLOWED_HOSTS=hosts):
            yield
    finally:
        request_started.connect(close_old_connections)
        request_finished.connect(close_old_connections)


def main(argv=None) -> int:
    args = parse_args(argv)
    started = time.monotonic()
    aliases = ("default", "replica")
    name = os.environ.get("SHOP_PLANS_DB_NAME", "shop_plans")
    connections["owner"].settings_dict["TEST"]["NAME"] = name
    with scratch_database(
        aliases={"owner", "default", "loader", "replica", "readonly"}
    ):
        plan = plan_for(args.scale)
        seeded = seed_database(plan=plan)
        vacuum_analyze()
        print(f"seeded {args.scale} in {seeded.seconds:.0f} s, vacuumed", flush=True)
        # The anonymous reads go to the replica. While it still replays the
        # seed's WAL it lags (the router then reads from the primary) and
        # its replay takes a core of the two the timings run on.
        if settings.REPLICA_READS:
            waited = time.monotonic()
            replica.wait_for_replay(args.replay_timeout)
            print(
                f"the replica replayed the seed {time.monotonic() - waited:.0f} s "
                "later",
                flush=True,
            )
        with app_conditions():
            requests = collect(
                deep_page=args.deep_page, repeat=args.repeat, aliases=aliases
            )
        problems = seq_scans(requests, args.max_seq_rows)
        server = report.server_facts(connections["default"])
    minutes = (time.monotonic() - started) / 60
    when = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    counts = ", ".join(f"{n:,} {what}" for what, n in plan.counts.items())
    header = (
        f"-- Generated by `make plans` on {when}, {report.machine()}; PostgreSQL "
        f"{server['version']}; seed {args.scale} ({counts}). Do not edit: run it again."
    )
    summary = "\n".join(
        [
            f"Measured {when} on {report.machine()}; PostgreSQL {server['version']}; "
            f"`python -m bench.plans {' '.join(argv or sys.argv[1:])}`: seed "
            f"{args.scale} ({counts}); each read {args.repeat} times, the median "
            f"shown; {minutes:.1f} minutes in all.",
            "",
            table(requests),
        ]
    )
    print(summary)
    if not args.no_write:
        write_snippets(args.snippets, requests, header, summary)
        print(f"wrote {len(requests)} plans and summary.md to {args.snippets}")
    if problems:
        print(
            f"\n{len(problems)} sequential scan(s) of tables over "
            f"{args.max_seq_rows:,} rows:\n" + "\n".join(problems),
            file=sys.stderr,
        )
        return 1
    print(f"no sequential scan of a table over {args.max_seq_rows:,} rows")
    return 0


if __name__ == "__main__":
    sys.exit(main())
