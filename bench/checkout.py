"""Checkout, the app's way against one PL/pgSQL call, under concurrent clients.

    .venv/bin/python -m bench.checkout [--checkouts 640] [--clients 1,4,16] [--write]

The app's way is orders/services/checkout.py:checkout, called directly (no
HTTP) with the fake gateway answering at once: three transactions and a
couple of dozen statements. The rival is orders_checkout_place
(orders/sql/functions/checkout_place_v01.sql): the same work in one call.
Each cell of the table runs a fixed number of checkouts split over N client
threads, each thread with its own connection, started together at a barrier
after one untimed warm-up checkout each. Two scenarios:

    hot SKU      every client buys the same SKU (one stock row for all)
    spread SKUs  client i buys SKU i (no two clients share a stock row)

Everything runs in a scratch database (bench/settings.py) that is created,
migrated and dropped here. After each cell the stock is checked: exactly
one unit sold per checkout, nothing left reserved.
"""

import argparse
import sys
import threading
import time
import uuid
from contextlib import contextmanager, suppress
from dataclasses import dataclass

from django.db import connection, connections
from django.db.models import Sum
from django.test.utils import (
    CaptureQueriesContext,
    setup_databases,
    teardown_databases,
)

from bench import report
from catalog.models import Category, Product, ProductVariant, StockLevel, Warehouse
from orders import services
from orders.models import Cart, CartItem, Order
from shop.accounts.models import Customer, User
from shop.db_context import staff_transaction
from shop.errors import ApplicationError

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


@dataclass
class Cell:
    way: str
    scenario: str
    clients: int
    checkouts: int
    seconds: float
    latencies: list[float]
    cpu_seconds: float

    @property
    def throughput(self) -> float:
        return self.checkouts / self.seconds


def race(place, customers_by_client: list[list[int]]):
    """Run the clients at once.

    Return the wall time, every checkout's latency, and the CPU time the
    client threads spent in this process (Python, the driver) for them all.
    """
    start_line = threading.Barrier(len(customers_by_client) + 1)
    latencies: list[list[float]] = [[] for _ in customers_by_client]
    cpu = [0.0] * len(customers_by_client)
    errors: list[BaseException] = []

    def client(index, customers):
        try:
            warm_up, *timed = customers
            place(warm_up)  # connects, and the server caches plans and pages
            start_line.wait()
            cpu_began = time.thread_time()
            for customer_id in timed:
                began = time.perf_counter()
                place(customer_id)
                latencies[index].append(time.perf_counter() - began)
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
    return seconds, [lat for per_client in latencies for lat in per_client], sum(cpu)


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

    seconds, latencies, cpu_seconds = race(WAYS[way], customers_by_client)

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
        way, scenario, clients, per_client * clients, seconds, latencies, cpu_seconds
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
        "--write", action="store_true", help="also update docs/benchmarks.md"
    )
    args = parser.parse_args(argv)
    args.clients = [int(n) for n in args.clients.split(",")]
    if min(args.clients) < 1 or args.checkouts < max(args.clients):
        parser.error("every client needs at least one checkout: check the numbers")
    return args


def main(argv=None) -> int:
    args = parse_args(argv)
    started = time.monotonic()
    load = report.load_average()
    with scratch_database():
        shop = build_shop(
            customers=args.checkouts + max(args.clients), spread=max(args.clients)
        )
        statements = statements_per_checkout(shop)
        cells = [
            run_cell(shop, way, scenario, clients, args.checkouts)
            for scenario in SCENARIOS
            for clients in args.clients
            for way in WAYS  # app then function, side by side in time
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
    )
    print(text)
    if args.write:
        path = report.write(text)
        print(f"updated {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
