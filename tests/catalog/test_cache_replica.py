"""The catalog cache over the real replica: fills read the primary for what changed.

A write marks each version it moves (catalog/cache/invalidation.py:
versions_bump), and a fill reads the primary only for the entries whose
versions are marked (catalog/cache/reads.py:_fill_reads). The standby's
replay is paused around each write (tests/replicas.py: replay_paused), so
the replica still shows the rows from before it: an answer that shows the
write was read on the primary, and one read on the replica did not need it.

Transactional: the replica sees only committed rows. The markers live in
the suite's Redis under a key prefix of the test's own; the catalog
cache's entries carry the test database's name (catalog/cache/store.py:key).
"""

import pytest
from rest_framework.test import APIClient

from catalog.cache import Change, versions_bump
from catalog.models import Product, StockLevel
from tests.replicas import (
    REPLICA_DATABASES,
    make_catalog,
    ran,
    replay_paused,
    replica_ready,
    suite_redis_cache,
)

pytestmark = pytest.mark.django_db(transaction=True, databases=REPLICA_DATABASES)

LIST_URL = "/api/v1/products/?page_size=10"
# make_catalog's stock: StockLevelFactory's quantity_on_hand, nothing reserved.
ON_HAND = 10


@pytest.fixture
def cached_replica_reads(replica_routing):
    """Replica reads on, the catalog cache on, and one verdict for the whole test.

    The verdict says "ok" throughout, paused replay or not: what sends a
    read to the primary here is a marker, never the lag.
    """
    replica_routing.CACHES = suite_redis_cache()
    replica_routing.REPLICA_MAX_LAG_SECONDS = 60
    replica_routing.REPLICA_CHECK_SECONDS = 60
    return replica_routing


def availability(page: dict) -> dict[str, int]:
    return {card["slug"]: card["available"] for card in page["results"]}


def test_a_reservation_sends_only_its_products_fills_to_the_primary(
    cached_replica_reads, queries_by_alias
):
    make_catalog(products=3)
    replica_ready()
    client = APIClient()
    assert client.get(LIST_URL).status_code == 200  # the page and its cards, stored
    reserved = Product.objects.get(slug="lamp-0")

    with replay_paused():
        StockLevel.objects.filter(variant__product=reserved).update(reserved=1)
        # What the listener does with the reservation's NOTIFY: the product,
        # not the lists (tests/catalog/test_cache_listener.py).
        versions_bump(Change.of([reserved.pk]))

        with queries_by_alias() as warm_page:
            warm = client.get(LIST_URL).json()
        with queries_by_alias() as cold_page:
            cold = client.get("/api/v1/products/?page_size=5").json()
        with queries_by_alias() as other_detail:
            other = client.get("/api/v1/products/lamp-1/")
        with queries_by_alias() as own_detail:
            own = client.get("/api/v1/products/lamp-0/").json()

    # The page's entry held: only the reserved product's card, on the primary.
    assert ran(warm_page) == {"default": 1}
    # A page not cached yet: its rows from the replica, then the reserved
    # product's card again from the primary (the replica's shows 10).
    assert ran(cold_page) == {"replica": 1, "default": 1}
    for page in (warm, cold):
        assert availability(page) == {
            "lamp-2": ON_HAND,
            "lamp-1": ON_HAND,
            "lamp-0": ON_HAND - 1,
        }
    # Another product's detail: nothing of it changed, the replica serves it.
    assert other.status_code == 200
    assert ran(other_detail) == {"replica": 2}
    # The reserved product's detail: the replica's body came back for a
    # product whose marker lives, and was computed again on the primary.
    assert ran(own_detail) == {"replica": 2, "default": 2}
    assert own["available"] == ON_HAND - 1

    # What those fills stored is the primary's: served with no SQL.
    with queries_by_alias() as again:
        assert client.get("/api/v1/products/lamp-0/").json()["available"] == 9
        assert availability(client.get(LIST_URL).json())["lamp-0"] == 9
    assert ran(again) == {}


def test_a_staff_stock_change_shows_on_the_anonymous_pages_at_once(
    cached_replica_reads, staff_client, queries_by_alias
):
    """The staff member's write marks the product and the lists; the
    anonymous pages that showed the old stock are read on the primary, while
    the replica still has not replayed the change."""
    make_catalog(products=2)
    replica_ready()
    anonymous = APIClient()
    sku = StockLevel.objects.get(variant__product__slug="lamp-0").variant.sku
    assert anonymous.get("/api/v1/products/lamp-0/").json()["available"] == ON_HAND
    assert availability(anonymous.get(LIST_URL).json())["lamp-0"] == ON_HAND
    assert anonymous.get("/api/v1/products/lamp-1/").status_code == 200

    with replay_paused():
        response = staff_client.patch(
            f"/api/v1/stock/{sku}/", {"quantity_on_hand": 2}, format="json"
        )
        with queries_by_alias() as detail_read:
            detail = anonymous.get("/api/v1/products/lamp-0/").json()
        with queries_by_alias() as page_read:
            page = anonymous.get(LIST_URL).json()
        with queries_by_alias() as other_read:
            other = anonymous.get("/api/v1/products/lamp-1/")

    assert response.status_code == 200, response.json()
    assert detail["available"] == 2
    assert availability(page) == {"lamp-1": ON_HAND, "lamp-0": 2}
    # Read where the change is: the replica had not replayed it.
    assert ran(detail_read) == {"default": 2}
    assert ran(page_read) == {"default": 1}
    # The other product's detail entry was not retired: no SQL at all. (A
    # detail not cached yet would be read on the primary for the lists'
    # marker: a staff stock change may move a product onto or off the
    # in-stock lists, and a detail's 404 depends on the lists.)
    assert other.status_code == 200
    assert ran(other_read) == {}
