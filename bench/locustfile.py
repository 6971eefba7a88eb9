"""Locust's users for the HTTP benchmark (bench/http.py), one class per endpoint.

bench/http.py runs Locust headless once per cell, naming one class, so a
cell loads one endpoint. Each user sends its next request as soon as the
last one answered (a closed loop, no think time): the figures are what the
server sustains, not what a crowd of people would ask of it.

What the requests need (product slugs, customers' tokens, the SKUs the
buyers buy) comes from a JSON file that bench/http.py writes beforehand and
names in SHOP_BENCH_HTTP_DATA; the buyers are the ones it set aside for the
configuration named in SHOP_BENCH_HTTP_CONFIGURATION.

The figures go to the JSON file named in SHOP_BENCH_HTTP_RESULTS when Locust
quits, counted from the moment every user has started (--reset-stats):
Locust's own count, failures and requests/s for each request name, its
errors, and each request's time in milliseconds. Not Locust's CSV: in a
headless run it is written before the run's last second, which it misses
(a 2-second run of 297 requests wrote 163), and it rounds times under
100 ms to whole milliseconds.

Never imported by the shop or its tests: importing locust patches the
standard library for gevent.
"""

import itertools
import json
import os
import random
import uuid
from collections import defaultdict

from locust import FastHttpUser, constant, events, task

with open(os.environ["SHOP_BENCH_HTTP_DATA"], encoding="utf-8") as data_file:
    DATA = json.load(data_file)

# The names the requests are reported under: bench/http.py reads its
# figures by them.
PING = "GET /api/v1/ping/"
PRODUCT_LIST = "GET /api/v1/products/"
PRICE_ORDER = "GET /api/v1/products/?ordering=price"
SEARCH = "GET /api/v1/products/?search="
PRODUCT_DETAIL = "GET /api/v1/products/{slug}/"
CART = "GET /api/v1/cart/"
CART_ADD = "POST /api/v1/cart/items/"
CHECKOUT = "POST /api/v1/checkout/"

# Each user of a class takes the next customer, so no two users share a
# cart: two checkouts of one cart would refuse each other (409).
_next_reader = itertools.count()
_next_buyer = itertools.count()
_times: dict[str, list[float]] = defaultdict(list)


@events.request.add_listener
def _timed(name, response_time, **kwargs):
    _times[name].append(response_time)


@events.spawning_complete.add_listener
def _every_user_started(user_count, **kwargs):
    _times.clear()  # as Locust's own figures are, with --reset-stats


@events.quitting.add_listener
def _write_results(environment, **kwargs):
    stats = environment.runner.stats
    results = {
        "requests": {
            name: {
                "per_second": entry.total_rps,
                "times": _times.get(name, []),
            }
            for (name, _method), entry in stats.entries.items()
        },
        "failures": stats.total.num_failures,
        "errors": [
            {"name": e.name, "error": str(e.error), "occurrences": e.occurrences}
            for e in stats.errors.values()
        ],
    }
    with open(os.environ["SHOP_BENCH_HTTP_RESULTS"], "w", encoding="utf-8") as out:
        json.dump(results, out)


class ShopUser(FastHttpUser):
    abstract = True
    wait_time = constant(0)

    def send(self, method, path, name, *, expect=200, **kwargs):
        """One request; any other status fails it, with the body in the report."""
        with self.client.request(
            method, path, name=name, catch_response=True, **kwargs
        ) as response:
            if response.status_code != expect:
                response.failure(f"{response.status_code} {response.text[:300]}")
        return response


class Ping(ShopUser):
    @task
    def ping(self):
        self.send("GET", "/api/v1/ping/", PING)


class ProductList(ShopUser):
    @task
    def product_list(self):
        self.send("GET", "/api/v1/products/", PRODUCT_LIST)


class ProductListByPrice(ShopUser):
    @task
    def product_list_by_price(self):
        self.send("GET", "/api/v1/products/?ordering=price", PRICE_ORDER)


class ProductSearch(ShopUser):
    @task
    def product_search(self):
        self.send("GET", f"/api/v1/products/?search={DATA['search']}", SEARCH)


class ProductDetail(ShopUser):
    def on_start(self):
        # Each user its own order of the slugs: the users do not all read
        # the same product at the same moment.
        slugs = DATA["slugs"]
        self.slugs = itertools.cycle(random.Random().sample(slugs, k=len(slugs)))

    @task
    def product_detail(self):
        self.send("GET", f"/api/v1/products/{next(self.slugs)}/", PRODUCT_DETAIL)


class Cart(ShopUser):
    def on_start(self):
        token = DATA["readers"][next(_next_reader) % len(DATA["readers"])]
        self.auth = {"Authorization": f"Token {token}"}

    @task
    def cart(self):
        self.send("GET", "/api/v1/cart/", CART, headers=self.auth)


class Checkout(ShopUser):
    def on_start(self):
        buyers = DATA["buyers"][os.environ["SHOP_BENCH_HTTP_CONFIGURATION"]]
        buyer = buyers[next(_next_buyer) % len(buyers)]
        self.auth = {"Authorization": f"Token {buyer['token']}"}
        self.line = {"sku": buyer["sku"], "quantity": 1}

    @task
    def checkout(self):
        added = self.send(
            "POST",
            "/api/v1/cart/items/",
            CART_ADD,
            expect=201,
            json=self.line,
            headers=self.auth,
        )
        if added.status_code != 201:
            return  # a failure already; a checkout of an empty cart says nothing
        self.send(
            "POST",
            "/api/v1/checkout/",
            CHECKOUT,
            expect=201,
            json={"shipping_address": DATA["address"], "payment_token": "tok_ok"},
            headers={**self.auth, "Idempotency-Key": str(uuid.uuid4())},
        )
