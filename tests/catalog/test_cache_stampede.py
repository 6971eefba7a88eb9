"""50 requests miss one cold entry at the same moment: it is computed at most twice.

Real threads, each with its own connections, released together by a
barrier (tests/concurrency.py). The first to take the entry's lock fills it;
the others wait and read what it stored (catalog/cache/reads.py:_single_flight).
"""

import threading
import time

import pytest
from rest_framework.test import APIClient

from catalog import cache as catalog_cache
from catalog import selectors
from catalog.api.serializers import ProductDetailOutput
from tests.catalog.factories import StockLevelFactory
from tests.concurrency import run_concurrently
from tests.dbs import ALL_DATABASES, wait_for_replica

pytestmark = [
    pytest.mark.django_db(transaction=True, databases=ALL_DATABASES),
    pytest.mark.concurrency,
]
RACERS = 50


@pytest.fixture(autouse=True)
def redis_cache_on():
    if not catalog_cache.enabled():
        pytest.skip("the catalog cache needs Redis: REDIS_URL is empty")
    catalog_cache.stats_reset()


@pytest.fixture
def products():
    levels = StockLevelFactory.create_batch(5, quantity_on_hand=3)
    wait_for_replica()
    return [level.variant.product for level in levels]


def test_fifty_simultaneous_misses_of_one_detail_compute_it_once(products):
    """At the cache's API, with the view's own computation, slowed down so
    that every racer surely misses while the first one computes."""
    slug = products[0].slug
    computed = []
    lock = threading.Lock()

    def compute():
        with lock:
            computed.append(threading.get_ident())
        time.sleep(0.2)
        return ProductDetailOutput(selectors.product_get(slug=slug)).data

    def read():
        return catalog_cache.product_detail(slug=slug, compute=compute)

    bodies, errors = run_concurrently([read] * RACERS)

    assert errors == [None] * RACERS
    assert 1 <= len(computed) <= 2, f"{len(computed)} computations"
    assert all(body == bodies[0] for body in bodies)
    assert bodies[0]["slug"] == slug
    detail = catalog_cache.stats()["detail"]
    assert (detail["lookups"], detail["misses"]) == (RACERS, RACERS)
    assert detail["fills"] == len(computed)


@pytest.mark.parametrize(
    "url",
    ["/api/v1/products/?ordering=price&page_size=3", "/api/v1/categories/"],
)
def test_fifty_simultaneous_requests_of_a_cold_page_fill_it_at_most_twice(
    products, url
):
    def get():
        response = APIClient().get(url)
        return response.status_code, response.json()

    answers, errors = run_concurrently([get] * RACERS)

    assert errors == [None] * RACERS
    assert {status for status, _ in answers} == {200}
    assert all(body == answers[0][1] for _, body in answers)
    counts = catalog_cache.stats()
    kind = "categories" if "categories" in url else "list"
    assert counts[kind]["lookups"] == RACERS
    assert 1 <= counts[kind]["fills"] <= 2, counts[kind]
