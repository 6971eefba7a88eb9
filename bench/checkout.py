"""Checkout, the app's way against one PL/pgSQL call, under concurrent clients.

    .venv/bin/python -m bench.checkout [--checkouts 640] [--clients 1,4,16]
        [--rounds 4] [--write]
    .venv/bin/python -m bench.checkout --profile 300

The app's way is orders/services/checkout.py:checkout, called directly (no
HTTP) with the fake gateway answering at once: the key's claim, three
phases, fifteen statements. The rival is orders_checkout_place
(orders/sql/functions/checkout_place_v01.sql): the same work in one call.

The function cannot call a payment gateway (its file says why); the app
does, and its figures include that call: one write to the fake gateway's
ledger on the gateway's own kept connection (orders/payments.py). So the
time each checkout spends inside orders/payments.py:charge is measured too,
and the report compares the app without it against the function as well:
like with like.
Each cell of the table runs a fixed number of checkouts split over N client
threads, each thread with its own connection, started together at a barrier
after one untimed warm-up checkout each. A cell and its rival are measured
in --rounds turns that alternate the two ways (interleaved), so that a slow
spell of the machine falls on both. Two scenarios:

    hot SKU      every client buys the same SKU (one stock row for all)
    spread SKUs  client i buys SKU i (no two clients share a stock row)

Everything runs in a scratch database (bench/settings.py) that is created,
migrated and dropped here. After each cell the stock is checked: exactly
one unit sold per checkout, nothing left reserved.

--profile N runs N app checkouts at one client, nothing else, and prints
where their time goes: each phase's wall and CPU time, each statement's
round trip, the gateway's call, and the Python between them
(docs/benchmarks.md keeps one before and one after).
"""

import argparse
import importlib
import statistics
import sys
import threading
import time
import uuid
from collections import defaultdict
from contextlib import ExitStack, contextmanager, suppress
from dataclasses import dataclass, field

from django.db import connection, connections
from django.db.models import Sum
from django.test.utils import (
    CaptureQueriesContext,
    setup_databases,
    teardown_databases,
)

from bench import report
from catalog.models import Category, Product, ProductVariant, StockLevel, Warehouse
from orders import payments, services
from orders.models import Cart, CartItem, Order
from shop.accounts.models import Customer, User
from shop.db_context import staff_transaction
from shop.errors import ApplicationError

# The module, not the function orders.services re-exports under its name.
checkout_service = importlib.import_module("orders.services.checkout")
ADDRESS = services.ShippingAddress(
    line1="1 Bench Street", city="Benchville", postal_code="12345", country="US"
)
FINGERPRINT = services.request_fingerprint({"bench": True})
PLACE = "SELECT orders_checkout_place(%s, %s, %s, %s, %s, %s)"
STOCK = 10_000_000
CART_SIZES = (1, 3, 10)
SCENARIOS = ("hot SKU", "spread SKUs")


class CheckoutFailed(RuntimeError):
    """A benchmarked checkout did not place its order: the figures would lie."""


def app_place(customer_id: int) -> None:
    result = services.checkout(
        customer_id=customer_id,
        key=uuid.uuid4().hex,
        address=ADDRESS,
        payment_token="tok_ok",
        coupon_code=None,
        fingerprint=FINGERPRINT,
    )
    # checkout() returns an outcome (orders/services/checkout.py): a fresh
    # key can only place the order or be refused, never replay.
    if isinstance(result, ApplicationError):
        raise CheckoutFailed(f"app checkout refused: {result.code}: {result.detail}")
    if not isinstance(result, services.OrderPlaced):
        raise CheckoutFailed(f"app checkout did not place the order: {result!r}")


def function_place(customer_id: int) -> None:
    with connection.cursor() as cursor:
        cursor.execute(
            PLACE,
            [
                customer_id,
                uuid.uuid4().hex,
                ADDRESS.line1,
                ADDRESS.city,
                ADDRESS.postal_code,
                ADDRESS.country,
            ],
        )
        cursor.fetchone()


WAYS = {"app": app_place, "function": function_place}


@contextmanager
def scratch_database(aliases=frozenset({"owner", "default"})):
    """Create and migrate the benchmark's own database; drop it afterwards."""
    config = setup_databases(
        verbosity=0,
        interactive=False,
        aliases=set(aliases),
        serialized_aliases=set(),
    )
    try:
        yield
    finally:
        connections.close_all()
        teardown_databases(config, verbosity=0)


@dataclass
class Shop:
    """The throw-away rows the benchmark buys from: variant and customer ids."""

    hot: int
    spread: list[int]
    assorted: list[int]
    customers: list[int]


def variants(product, prefix, count):
    made = ProductVariant.objects.bulk_create(
        ProductVariant(product=product, sku=f"{prefix}-{n:02d}", price="19.99")
        for n in range(count)
    )
    return [v.pk for v in made]


def build_shop(*, customers: int, spread: int) -> Shop:
    warehouse = Warehouse.objects.create(code="BENCH", name="Bench", is_default=True)
    category = Category.objects.create(name="Bench", slug="bench")
    product = Product.objects.create(
        name="Bench thing", slug="bench-thing", category=category
    )
    shop = Shop(
        hot=variants(product, "HOT", 1)[0],
        spread=variants(product, "SPREAD", spread),
        assorted=variants(product, "LINE", max(CART_SIZES)),
        customers=[],
    )
    StockLevel.objects.bulk_create(
        StockLevel(variant_id=v, warehouse=warehouse, quantity_on_hand=STOCK)
        for v in [shop.hot, *shop.spread, *shop.assorted]
    )
    users = User.objects.bulk_create(
        # "!" is an unusable password hash: nobody logs in as these.
        User(email=f"bench-{n}@example.test", password="!")
        for n in range(customers)
    )
    made = Customer.objects.bulk_create(Customer(user=u) for u in users)
    # Staff: row-level security admits every customer's carts to no one else.
    with staff_transaction(statement_timeout=None):
        Cart.objects.bulk_create(Cart(customer=c) for c in made)
    shop.customers = [c.pk for c in made]
    return shop


def fill_carts(lines: dict[int, list[int]]) -> None:
    """Put one unit of each listed variant in each customer's cart."""
    with staff_transaction(statement_timeout=None):
        cart_id = dict(
            Cart.objects.filter(customer_id__in=lines).values_list("customer_id", "id")
        )
        CartItem.objects.bulk_create(
            CartItem(cart_id=cart_id[customer], variant_id=variant, quantity=1)
            for customer, variant_ids in lines.items()
            for variant in variant_ids
        )


def tidy() -> None:
    """VACUUM ANALYZE, so no cell pays for the dead rows of the one before."""
    with connections["owner"].cursor() as cursor:
        cursor.execute("VACUUM ANALYZE")


def order_count() -> int:
    with staff_transaction(statement_timeout=None):  # every customer's orders
        return Order.objects.count()


def stock_of(variant_ids):
    return StockLevel.objects.filter(variant_id__in=variant_ids).aggregate(
        on_hand=Sum("quantity_on_hand"), reserved=Sum("reserved")
    )


class GatewayClock:
    """The wall and CPU time each thread spends inside the gateway's charge().

    Measured around the real call, which still runs: while installed,
    orders/payments.py:charge is wrapped, and spent() hands a thread its
    time since it last asked.
    """

    def __init__(self):
        self._local = threading.local()

    @contextmanager
    def installed(self):
        real = payments.charge

        def timed(**kwargs):
            wall, cpu = time.perf_counter(), time.thread_time()
            try:
                return real(**kwargs)
            finally:
                local = self._local
                local.wall = getattr(local, "wall", 0.0) + time.perf_counter() - wall
                local.cpu = getattr(local, "cpu", 0.0) + time.thread_time() - cpu

        payments.charge = timed
        try:
            yield self
        finally:
            payments.charge = real

    def spent(self) -> tuple[float, float]:
        wall = getattr(self._local, "wall", 0.0)
        cpu = getattr(self._local, "cpu", 0.0)
        self._local.wall = self._local.cpu = 0.0
        return wall, cpu


@dataclass
class Cell:
    way: str
    scenario: str
    clients: int
    checkouts: int
    seconds: float
    latencies: list[float]
    cpu_seconds: float
    # Each checkout's time inside the gateway's charge() (the app only).
    gateway_latencies: list[float] = field(default_factory=list)
    gateway_cpu_seconds: float = 0.0

    @property
    def throughput(self) -> float:
        return self.checkouts / self.seconds

    @property
    def latencies_without_gateway(self) -> list[float]:
        if not self.gateway_latencies:
            return self.latencies
        return [
            total - gateway
            for total, gateway in zip(
                self.latencies, self.gateway_latencies, strict=True
            )
        ]


def race(place, customers_by_client: list[list[int]]):
    """Run the clients at once.

    Return the wall time, every checkout's latency and the part of it spent
    inside the gateway's charge(), and the CPU time the client threads spent
    in this process (Python, the driver) for them all, and inside charge().
    """
    start_line = threading.Barrier(len(customers_by_client) + 1)
    latencies: list[list[float]] = [[] for _ in customers_by_client]
    in_gateway: list[list[float]] = [[] for _ in customers_by_client]
    cpu = [0.0] * len(customers_by_client)
    gateway_cpu = [0.0] * len(customers_by_client)
    errors: list[BaseException] = []
    clock = GatewayClock()

    def client(index, customers):
        try:
            warm_up, *timed = customers
            place(warm_up)  # connects, and the server caches plans and pages
            clock.spent()
            start_line.wait()
            cpu_began = time.thread_time()
            for customer_id in timed:
                began = time.perf_counter()
                place(customer_id)
                latencies[index].append(time.perf_counter() - began)
                wall, gateway = clock.spent()
                in_gateway[index].append(wall)
                gateway_cpu[index] += gateway
            cpu[index] = time.thread_time() - cpu_began
        except BaseException as exc:
            errors.append(exc)
            start_line.abort()
        finally:
            connections.close_all()

    threads = [
        threading.Thread(target=client, args=(i, c), name=f"client-{i}")
        for i, c in enumerate(customers_by_client)
    ]
    with clock.installed():
        for thread in threads:
            thread.start()
        with suppress(threading.BrokenBarrierError):
            start_line.wait()
        began = time.perf_counter()
        for thread in threads:
            thread.join()
        seconds = time.perf_counter() - began
    if errors:
        raise CheckoutFailed(f"{len(errors)} client(s) failed") from errors[0]
    return (
        seconds,
        [lat for per_client in latencies for lat in per_client],
        sum(cpu),
        [lat for per_client in in_gateway for lat in per_client],
        sum(gateway_cpu),
    )


def run_cell(shop: Shop, way: str, scenario: str, clients: int, checkouts: int):
    per_client = checkouts // clients
    customers = iter(shop.customers)
    customers_by_client = [
        [next(customers) for _ in range(per_client + 1)] for _ in range(clients)
    ]
    bought = [shop.hot] * clients if scenario == "hot SKU" else shop.spread[:clients]
    fill_carts(
        {
            customer: [variant]
            for customer_ids, variant in zip(customers_by_client, bought, strict=True)
            for customer in customer_ids
        }
    )
    tidy()
    before = stock_of(set(bought))
    orders_before = order_count()

    seconds, latencies, cpu_seconds, in_gateway, gateway_cpu = race(
        WAYS[way], customers_by_client
    )

    after = stock_of(set(bought))
    sold = clients * (per_client + 1)
    if (
        before["on_hand"] - after["on_hand"] != sold
        or after["reserved"] != 0
        or order_count() - orders_before != sold
    ):
        raise CheckoutFailed(
            f"{way}, {scenario}, {clients} clients: expected {sold} units sold and "
            f"none reserved, found {before['on_hand'] - after['on_hand']} sold and "
            f"{after['reserved']} reserved"
        )
    return Cell(
        way,
        scenario,
        clients,
        per_client * clients,
        seconds,
        latencies,
        cpu_seconds,
        gateway_latencies=in_gateway if way == "app" else [],
        gateway_cpu_seconds=gateway_cpu,
    )


def interleaved(shop: Shop, scenario: str, clients: int, args) -> list[Cell]:
    """Each way's cell, measured in --rounds turns that alternate the ways.

    The machine's speed drifts over seconds here (two cores, shared with
    the server and the replica): run one way after the other and a slow
    spell lands on one of them, and the ratio the cell pair exists for
    moves with it. Alternating app, function, app, function ... puts each
    spell on both. Each turn has its own warm-up checkout per client.
    """
    turns = {way: [] for way in WAYS}
    per_round = max(clients, args.checkouts // args.rounds)
    for _ in range(args.rounds):
        for way in WAYS:
            turns[way].append(run_cell(shop, way, scenario, clients, per_round))
    return [merged(parts) for parts in turns.values()]


def merged(parts: list[Cell]) -> Cell:
    """One cell from a way's turns: their checkouts, times and latencies together."""
    first = parts[0]
    return Cell(
        first.way,
        first.scenario,
        first.clients,
        sum(part.checkouts for part in parts),
        sum(part.seconds for part in parts),
        [latency for part in parts for latency in part.latencies],
        sum(part.cpu_seconds for part in parts),
        gateway_latencies=[g for part in parts for g in part.gateway_latencies],
        gateway_cpu_seconds=sum(part.gateway_cpu_seconds for part in parts),
    )


def statements_per_checkout(shop: Shop) -> dict[str, list[int]]:
    """Statements each way sends for carts of CART_SIZES lines."""
    counts = {way: [] for way in WAYS}
    customers = iter(shop.customers)
    for way, place in WAYS.items():
        for size in CART_SIZES:
            customer = next(customers)
            fill_carts({customer: shop.assorted[:size]})
            with CaptureQueriesContext(connection) as captured:
                place(customer)
            counts[way].append(len(captured.captured_queries))
    return counts


def like_with_like(cells) -> str:
    """The app without its gateway call against the function, as a table."""
    by_key = {(c.scenario, c.clients, c.way): c for c in cells}
    rows = [
        "| scenario | clients | p50 ms app without its gateway call | function "
        "| app/function | p50 ms in the gateway |",
        "| --- | ---: | ---: | ---: | ---: | ---: |",
    ]
    for scenario, clients in dict.fromkeys((c.scenario, c.clients) for c in cells):
        app = by_key[(scenario, clients, "app")]
        fn = by_key[(scenario, clients, "function")]
        without = statistics.median(app.latencies_without_gateway)
        function = statistics.median(fn.latencies)
        gateway = statistics.median(app.gateway_latencies)
        rows.append(
            f"| {scenario} | {clients} | {report.ms(without)} | "
            f"{report.ms(function)} | {report.ratio(without, function)} | "
            f"{report.ms(gateway)} |"
        )
    apps = [c for c in cells if c.way == "app"]
    checkouts = sum(c.checkouts for c in apps)
    cpu = sum(c.cpu_seconds - c.gateway_cpu_seconds for c in apps) / checkouts
    return "\n".join(
        [
            "Like with like: the function cannot call a gateway, so here the app's "
            "time inside orders/payments.py:charge, measured per checkout, is taken "
            "out of its latency (the call still ran).",
            "",
            *rows,
            "",
            f"Client CPU per checkout without the gateway call: app {report.ms(cpu)} "
            "ms.",
        ]
    )


def statement_label(sql: str, files: dict[str, str]) -> str:
    """The .sql file a statement came from, or its first line of SQL."""
    if sql in files:
        return files[sql]
    lines = (line.strip() for line in sql.splitlines())
    return next((line for line in lines if line and not line.startswith("--")), "")


def sql_files() -> dict[str, str]:
    """The orders' query files by their text, as read_sql() hands them out."""
    root = report.DOC.parent.parent
    return {
        path.read_text(encoding="utf-8"): path.name
        for path in sorted((root / "orders" / "sql" / "queries").glob("*.sql"))
    }


class Stopwatch:
    """Wall and CPU time per label, summed over a run."""

    def __init__(self):
        self.wall = defaultdict(float)
        self.cpu = defaultdict(float)
        self.count = defaultdict(int)

    @contextmanager
    def timing(self, label):
        wall, cpu = time.perf_counter(), time.thread_time()
        try:
            yield
        finally:
            self.wall[label] += time.perf_counter() - wall
            self.cpu[label] += time.thread_time() - cpu
            self.count[label] += 1

    def wrap(self, label, func):
        def timed(*args, **kwargs):
            with self.timing(label):
                return func(*args, **kwargs)

        return timed


# Where each part of a checkout lives, by its function in
# orders/services/checkout.py (the same names before and after issue 9).
PHASES = {
    "idempotency_key_claim": "the key's claim",
    "_reserve": "phase 1",
    "_charge": "phase 2: the gateway's charge",
    "_record": "phase 2: the charge recorded",
    "_settle": "phase 3",
}


def profile(shop: Shop, checkouts: int) -> str:
    """Where one client's app checkouts spend their time, as two tables."""
    fill_carts({customer: [shop.hot] for customer in shop.customers})
    customers = iter(shop.customers)
    for _ in range(5):
        app_place(next(customers))  # connections opened, plans warm
    phases, statements = Stopwatch(), Stopwatch()
    wrapper = connections["default"]
    files = sql_files()

    def each_statement(execute, sql, params, many, context):
        with statements.timing(statement_label(sql, files)):
            return execute(sql, params, many, context)

    real_commit = wrapper.commit

    def timed_commit():
        with statements.timing("COMMIT"):
            return real_commit()

    latencies = []
    with ExitStack() as patches:
        for name, label in PHASES.items():
            real = getattr(checkout_service, name)
            setattr(checkout_service, name, phases.wrap(label, real))
            patches.callback(setattr, checkout_service, name, real)
        patches.enter_context(wrapper.execute_wrapper(each_statement))
        wrapper.commit = timed_commit
        patches.callback(delattr, wrapper, "commit")
        cpu_began = time.thread_time()
        for _ in range(checkouts):
            began = time.perf_counter()
            app_place(next(customers))
            latencies.append(time.perf_counter() - began)
        cpu = time.thread_time() - cpu_began

    def per(seconds):
        return report.ms(seconds / checkouts)

    in_statements = sum(statements.wall.values())
    phase_rows = [
        "| part | wall ms | CPU ms |",
        "| --- | ---: | ---: |",
        *(
            f"| {label} | {per(phases.wall[label])} | {per(phases.cpu[label])} |"
            for label in PHASES.values()
        ),
        f"| the whole checkout | {per(sum(latencies))} | {per(cpu)} |",
    ]
    statement_rows = [
        "| statement (its file, or its first line; BEGIN rides in the first "
        "of its transaction) | per checkout | wall ms |",
        "| --- | ---: | ---: |",
        *(
            f"| `{label[:60]}` | {statements.count[label] / checkouts:.0f} | "
            f"{per(seconds)} |"
            for label, seconds in sorted(statements.wall.items(), key=lambda i: -i[1])
        ),
        f"| all statements | "
        f"{sum(statements.count.values()) / checkouts:.0f} | {per(in_statements)} |",
    ]
    return "\n".join(
        [
            f"{checkouts} checkouts at one client, sequential; mean per checkout "
            f"(median latency {report.ms(statistics.median(latencies))} ms).",
            "",
            *phase_rows,
            "",
            *statement_rows,
            "",
            "Outside the statements: "
            f"{per(sum(latencies) - in_statements)} ms per checkout, of which "
            f"{per(phases.wall[PHASES['_charge']])} ms in the gateway's charge().",
        ]
    )


def parse_args(argv):
    parser = argparse.ArgumentParser(
        prog="python -m bench.checkout", description=__doc__.splitlines()[0]
    )
    parser.add_argument(
        "--checkouts",
        type=int,
        default=640,
        help="timed checkouts per cell, split evenly over the clients (default 640)",
    )
    parser.add_argument(
        "--clients",
        default="1,4,16",
        help="comma-separated numbers of concurrent clients (default 1,4,16)",
    )
    parser.add_argument(
        "--rounds",
        type=int,
        default=4,
        help="turns per cell, the ways alternating (default 4)",
    )
    parser.add_argument(
        "--write", action="store_true", help="also update docs/benchmarks.md"
    )
    parser.add_argument(
        "--profile",
        type=int,
        metavar="N",
        help="only profile N app checkouts at one client, and print where "
        "their time goes",
    )
    args = parser.parse_args(argv)
    args.clients = [int(n) for n in args.clients.split(",")]
    if args.rounds < 1:
        parser.error("--rounds must be at least 1")
    if min(args.clients) < 1 or args.checkouts < max(args.clients):
        parser.error("every client needs at least one checkout: check the numbers")
    return args


def main(argv=None) -> int:
    args = parse_args(argv)
    started = time.monotonic()
    load = report.load_average()
    if args.profile:
        with scratch_database():
            print(
                profile(build_shop(customers=args.profile + 5, spread=1), args.profile)
            )
        return 0
    with scratch_database():
        shop = build_shop(
            customers=args.checkouts + max(args.clients), spread=max(args.clients)
        )
        statements = statements_per_checkout(shop)
        cells = [
            cell
            for scenario in SCENARIOS
            for clients in args.clients
            for cell in interleaved(shop, scenario, clients, args)
        ]
        server = report.server_facts(connection)
    text = report.render(
        cells=cells,
        statements=statements,
        cart_sizes=CART_SIZES,
        server=server,
        load=load,
        command=" ".join(["python -m bench.checkout", *(argv or sys.argv[1:])]),
        checkouts=args.checkouts,
        minutes=(time.monotonic() - started) / 60,
        rounds=args.rounds,
    )
    text = f"{text}\n\n{like_with_like(cells)}"
    print(text)
    if args.write:
        path = report.write(text)
        print(f"updated {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
