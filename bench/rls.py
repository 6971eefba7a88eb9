"""Row-level security: what the policies and their contexts cost the app's reads.

    .venv/bin/python -m bench.rls [--orders 100000] [--repeat 300] [--write]

A scratch database (bench/settings.py) is seeded through the seed's own path
(COPY as shop_loader) with --orders orders, about 2.5 lines each. Then each
read runs three ways, interleaved round by round so that whatever else the
machine does falls on all three alike:

    bare      as shop_loader, which bypasses the policies: the statements
              alone, in autocommit (what the app sent before chapter 22)
    bare+tx   as shop_loader: BEGIN, the context's set_config(), the
              statements, COMMIT: the app's round trips, without policies
    rls       as shop_app: the same transaction, and the policies apply

rls / bare+tx is the price of the policies themselves; bare+tx / bare that
of running every read in a transaction with a context; rls / bare both.
The statements are the app's own, taken from its selectors' querysets.
Every way must return the same rows, or the benchmark stops: a policy that
hid rows would look fast and prove nothing.
"""

import argparse
import random
import statistics
import sys
import time
from dataclasses import dataclass, field

import psycopg
from django.db import connections
from django.db.models import Count

from bench import report
from bench.checkout import scratch_database
from orders import selectors
from orders.models import Order, OrderLine
from shop.seeding import plan_for, seed_database

# The staff report: paid revenue by month, over every order line. Under
# the policies each line is checked against its order's (chapter 22).
REVENUE_BY_MONTH = """
SELECT date_trunc('month', o.created_at) AS month,
       sum(l.unit_price * l.quantity) AS revenue
FROM orders_order_line AS l
JOIN orders_order AS o ON o.id = l.order_id
WHERE o.status = 'paid'
GROUP BY 1
ORDER BY 1
"""
CUSTOMER_CONTEXT = (
    "SELECT set_config('app.customer_id', %s, true), "
    "set_config('app.is_staff', 'off', true), set_config('app.job', '', true)"
)
STAFF_CONTEXT = (
    "SELECT set_config('app.customer_id', '', true), "
    "set_config('app.is_staff', 'on', true), set_config('app.job', '', true)"
)
WAYS = ("bare", "bare+tx", "rls")


class ResultsDiffer(RuntimeError):
    """The ways returned different rows: the figures would compare unequal work."""


@dataclass
class Read:
    """One read of the app: its statements, and the context it runs in."""

    name: str
    statements: list  # [(sql, params)], run in order
    context: tuple  # (sql, params) of the context's set_config()
    repeat_share: float = 1.0  # heavy reads run a fraction of --repeat
    jit: bool = False  # shop_app runs with jit off (scripts/sql/roles.sql)
    seconds: dict = field(default_factory=lambda: {way: [] for way in WAYS})


def queryset_sql(queryset):
    sql, params = queryset.query.sql_with_params()
    return sql, list(params)


def customer_reads(customer_id: int, order_id: int) -> list[Read]:
    """The order list's page and prefetch, and one order's detail."""
    context = (CUSTOMER_CONTEXT, [str(customer_id)])
    page = selectors.order_list(customer_id=customer_id)[:21]
    detail = selectors.order_list(customer_id=customer_id).filter(pk=order_id)
    return [
        Read("order list page (customer)", [queryset_sql(page)], context),
        Read("order detail (customer)", [queryset_sql(detail)], context),
    ]


def lines_of(order_ids):
    """The lines' prefetch, as order_list's Prefetch sends it (in id order)."""
    return queryset_sql(OrderLine.objects.filter(order_id__in=order_ids).order_by("id"))


def run_once(conn, read: Read, way: str):
    """Run the read one way; return (seconds, rows)."""
    rows = []
    started = time.perf_counter()
    if way == "bare":
        for sql, params in read.statements:
            rows.append(conn.execute(sql, params).fetchall())
    else:
        with conn.transaction():
            conn.execute(*read.context)
            for sql, params in read.statements:
                rows.append(conn.execute(sql, params).fetchall())
    return time.perf_counter() - started, rows


def measure(reads: list[Read], repeat: int) -> None:
    params = {
        alias: connections[alias].get_connection_params()
        for alias in ("loader", "default")
    }
    with (
        psycopg.connect(**params["loader"], autocommit=True) as bypass,
        psycopg.connect(**params["default"], autocommit=True) as app,
    ):
        by_way = {"bare": bypass, "bare+tx": bypass, "rls": app}
        for read in reads:
            # The same JIT setting on both sessions: shop_loader has the
            # server's default (on), shop_app its role's (off).
            jit = "on" if read.jit else "off"
            for conn in (bypass, app):
                conn.execute("SELECT set_config('jit', %s, false)", [jit])
            answers = {way: run_once(by_way[way], read, way)[1] for way in WAYS}
            if not answers["bare"] or any(
                a != answers["bare"] for a in answers.values()
            ):
                raise ResultsDiffer(f"{read.name}: the ways returned different rows")
            for round_number in range(max(int(repeat * read.repeat_share), 5)):
                # A different way goes first each round.
                order = WAYS[round_number % 3 :] + WAYS[: round_number % 3]
                for way in order:
                    seconds, _ = run_once(by_way[way], read, way)
                    read.seconds[way].append(seconds)


def build_reads(rng: random.Random) -> list[Read]:
    """Reads for one customer with several orders, and the staff report."""
    busy = list(
        Order.objects.using("loader")
        .values("customer_id")
        .annotate(n=Count("id"))
        .filter(n__gte=5)
        .order_by("customer_id")
        .values_list("customer_id", flat=True)
    )
    customer_id = rng.choice(busy)
    order_ids = list(
        Order.objects.using("loader")
        .filter(customer_id=customer_id)
        .order_by("-created_at", "-id")
        .values_list("id", flat=True)[:21]
    )
    page, detail = customer_reads(customer_id, order_ids[0])
    page.statements.append(lines_of(order_ids))
    detail.statements.append(lines_of(order_ids[:1]))
    reads = [page, detail]
    for jit in (False, True):
        reads.append(
            Read(
                f"revenue by month (staff, every line{', JIT on' if jit else ''})",
                [(REVENUE_BY_MONTH, [])],
                (STAFF_CONTEXT, []),
                repeat_share=0.1,
                jit=jit,
            )
        )
    return reads


def render(reads, *, server, load, command, orders, lines, minutes) -> str:
    when = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    load_note = f"; load average {load:.2f} at the start" if load is not None else ""
    header = (
        f"Measured {when} on {report.machine()}; PostgreSQL {server['version']}, "
        f"client and server on the same machine{load_note}. Command: `{command}`: "
        f"{orders:,} orders and {lines:,} lines seeded, every read repeated the "
        f"number of times shown, the three ways interleaved; {minutes:.1f} "
        "minutes in all."
    )
    rows = [
        "| read | runs | median ms bare | bare+tx | rls | rls / bare+tx "
        "| bare+tx / bare | rls / bare |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for read in reads:
        med = {way: statistics.median(read.seconds[way]) for way in WAYS}
        rows.append(
            f"| {read.name} | {len(read.seconds['rls'])} | "
            + " | ".join(report.ms(med[way]) for way in WAYS)
            + f" | {report.ratio(med['rls'], med['bare+tx'])}"
            f" | {report.ratio(med['bare+tx'], med['bare'])}"
            f" | {report.ratio(med['rls'], med['bare'])} |"
        )
    return "\n".join([header, "", *rows])


def parse_args(argv):
    parser = argparse.ArgumentParser(
        prog="python -m bench.rls", description=__doc__.splitlines()[0]
    )
    parser.add_argument("--orders", type=int, default=100_000)
    parser.add_argument(
        "--repeat",
        type=int,
        default=300,
        help="runs of each light read, per way (the staff report runs a tenth)",
    )
    parser.add_argument("--write", action="store_true")
    return parser.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    started = time.monotonic()
    load = report.load_average()
    plan = plan_for(
        "large",
        products=2_000,
        variants=6_000,
        customers=max(args.orders // 20, 100),
        reviews=1_000,
        orders=args.orders,
    )
    with scratch_database(aliases={"owner", "default", "loader"}):
        result = seed_database(plan=plan)
        reads = build_reads(random.Random(22))
        measure(reads, args.repeat)
        server = report.server_facts(connections["default"])
    text = render(
        reads,
        server=server,
        load=load,
        command=" ".join(["python -m bench.rls", *(argv or sys.argv[1:])]),
        orders=result.rows["orders_order"],
        lines=result.rows["orders_order_line"],
        minutes=(time.monotonic() - started) / 60,
    )
    print(text)
    if args.write:
        path = report.write(text, marker="bench.rls")
        print(f"updated {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
