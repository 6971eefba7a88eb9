"""The catalog cache: each public catalog read without the cache, cold, and warm.

    .venv/bin/python -m bench.cache [--products 20000] [--repeat 200] [--write]

A scratch database (bench/settings.py) is seeded through the seed's own
path with --products products, three variants each. Each read is measured
at two levels, in this process:

    view       the view's get() on a parsed request: the query parameters,
               then the cache, or the selector and the serializer
    request    a GET through Django's test client: the same, plus the
               middleware, REST framework's dispatch and the JSON rendering
               (no HTTP)

and three ways, interleaved round by round so that whatever else the
machine does falls on all three alike:

    no cache   CATALOG_CACHE off: the selector's SQL and the serializer,
               every time (what the shop did before the cache)
    cold       the cache on, every entry retired first (not timed): the
               same SQL, plus the lookup that misses, the lock and the store
    warm       the cache on, the entry there: Redis alone

Statements are counted on every alias the router may send a read to, and
the three ways must answer the same body, or the benchmark stops. The
cache's own Redis keys are this scratch database's
(catalog/cache/store.py:key), so a development server's are not touched.
"""

import argparse
import json
import random
import statistics
import sys
import time
from contextlib import ExitStack, contextmanager, nullcontext
from dataclasses import dataclass, field

from django.db import connections
from django.test import Client
from django.test.utils import CaptureQueriesContext, override_settings
from rest_framework.test import APIRequestFactory

from bench import report
from bench.checkout import scratch_database
from catalog import cache as catalog_cache
from catalog.api.views import CategoryTreeApi, ProductDetailApi, ProductListCreateApi
from catalog.models import Category, Product
from shop.replica import replica_forget
from shop.seeding import plan_for, seed_database

WAYS = ("no cache", "cold", "warm")
LEVELS = ("view", "request")
# A host ALLOWED_HOSTS accepts (not the test client's "testserver").
HOST = "localhost"
# The aliases a catalog read may run on (shop/db_routers.py).
ALIASES = ("default", "replica")


class AnswersDiffer(RuntimeError):
    """The ways answered differently: the figures would compare unequal work."""


@dataclass
class Read:
    name: str
    url: str
    view: type
    kwargs: dict = field(default_factory=dict)
    # {(level, way): [seconds]} and {(level, way): statements}
    seconds: dict = field(default_factory=dict)
    statements: dict = field(default_factory=dict)


def build_reads(rng: random.Random) -> list[Read]:
    """The public catalog reads: the tree, list pages, a product's detail."""
    products = list(Product.objects.filter(is_active=True).values("slug", "name"))
    product = rng.choice(products)
    word = rng.choice(product["name"].split())
    category = rng.choice(list(Category.objects.values_list("slug", flat=True)))
    lists = ProductListCreateApi
    return [
        Read("category tree", "/api/v1/categories/", CategoryTreeApi),
        Read("product list, first page (newest)", "/api/v1/products/", lists),
        Read(
            "product list, a category by price",
            f"/api/v1/products/?category={category}&ordering=price",
            lists,
        ),
        Read(
            "product list, a search", f"/api/v1/products/?search={word.lower()}", lists
        ),
        Read(
            "product detail",
            f"/api/v1/products/{product['slug']}/",
            ProductDetailApi,
            {"slug": product["slug"]},
        ),
    ]


@contextmanager
def counted():
    """The statements sent in the block, on every alias: {"count": n} after it."""
    result = {}
    with ExitStack() as stack:
        contexts = [
            stack.enter_context(CaptureQueriesContext(connections[alias]))
            for alias in ALIASES
        ]
        yield result
    result["count"] = sum(len(c.captured_queries) for c in contexts)


class Caller:
    """One read at one level: the body it answers."""

    def __init__(self):
        self.client = Client(HTTP_HOST=HOST)
        self.factory = APIRequestFactory()

    def __call__(self, read: Read, level: str):
        if level == "request":
            response = self.client.get(read.url)
            if response.status_code != 200:
                raise AnswersDiffer(f"{read.name}: {response.status_code}")
            return response.json()
        # What dispatch() does before it calls the handler, and no more.
        view = read.view(args=(), kwargs=read.kwargs, format_kwarg=None)
        view.request = view.initialize_request(
            self.factory.get(read.url, HTTP_HOST=HOST)
        )
        return json.loads(json.dumps(view.get(view.request, **read.kwargs).data))


def timed(call: Caller, read: Read, level: str, way: str):
    """One timed call `way`; (seconds, statements, body)."""
    if way == "cold":
        catalog_cache.everything_forget()
    elif way == "warm":
        call(read, level)  # there, whatever the previous way left
    switch = override_settings(CATALOG_CACHE=False) if way == "no cache" else None
    with switch or nullcontext(), counted() as statements:
        started = time.perf_counter()
        body = call(read, level)
        seconds = time.perf_counter() - started
    return seconds, statements["count"], body


def measure(reads: list[Read], repeat: int) -> None:
    call = Caller()
    for read in reads:
        for level in LEVELS:
            answers = {}
            for way in WAYS:
                cell = (level, way)
                _, read.statements[cell], answers[way] = timed(call, read, level, way)
                read.seconds[cell] = []
            if any(answer != answers["no cache"] for answer in answers.values()):
                raise AnswersDiffer(
                    f"{read.name} ({level}): the ways answered differently"
                )
            for round_number in range(repeat):
                # A different way goes first each round.
                order = WAYS[round_number % 3 :] + WAYS[: round_number % 3]
                for way in order:
                    seconds, statements, _ = timed(call, read, level, way)
                    read.seconds[(level, way)].append(seconds)
                    if statements != read.statements[(level, way)]:
                        raise AnswersDiffer(
                            f"{read.name} ({level}, {way}): {statements} statements, "
                            f"{read.statements[(level, way)]} the first time"
                        )


def render(reads, *, server, load, command, products, minutes) -> str:
    when = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    load_note = f"; load average {load:.2f} at the start" if load is not None else ""
    header = (
        f"Measured {when} on {report.machine()}; PostgreSQL {server['version']}, "
        f"Redis, client and servers on the same machine{load_note}. Command: "
        f"`{command}`: {products:,} products, every read repeated the number of "
        f"times shown, the three ways interleaved; {minutes:.1f} minutes in all."
    )
    rows = [
        "| read | level | runs | median ms no cache | cold | warm | cold / warm "
        "| statements no cache | cold | warm |",
        "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for read in reads:
        for level in LEVELS:
            med = {w: statistics.median(read.seconds[(level, w)]) for w in WAYS}
            rows.append(
                f"| {read.name} | {level} | {len(read.seconds[(level, 'warm')])} | "
                + " | ".join(report.ms(med[way]) for way in WAYS)
                + f" | {report.ratio(med['cold'], med['warm'])} | "
                + " | ".join(str(read.statements[(level, way)]) for way in WAYS)
                + " |"
            )
    return "\n".join([header, "", *rows])


def parse_args(argv):
    parser = argparse.ArgumentParser(
        prog="python -m bench.cache", description=__doc__.splitlines()[0]
    )
    parser.add_argument("--products", type=int, default=20_000)
    parser.add_argument("--repeat", type=int, default=200, help="runs per read and way")
    parser.add_argument("--write", action="store_true")
    return parser.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    started = time.monotonic()
    load = report.load_average()
    if not catalog_cache.store.on_redis():
        print("The catalog cache needs Redis: REDIS_URL is empty.", file=sys.stderr)
        return 1
    plan = plan_for(
        "small",
        products=args.products,
        variants=3 * args.products,
        reviews=0,
        orders=0,
    )
    with scratch_database(aliases={"owner", "default", "loader"}):
        try:
            seed_database(plan=plan)
            catalog_cache.everything_forget()
            reads = build_reads(random.Random(18))
            measure(reads, args.repeat)
            server = report.server_facts(connections["default"])
            catalog_cache.everything_forget()
        finally:
            # The router's probe keeps a session on the scratch database,
            # which could then not be dropped.
            replica_forget()
    text = render(
        reads,
        server=server,
        load=load,
        command=" ".join(["python -m bench.cache", *(argv or sys.argv[1:])]),
        products=args.products,
        minutes=(time.monotonic() - started) / 60,
    )
    print(text)
    if args.write:
        path = report.write(text, marker="bench.cache")
        print(f"updated {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
