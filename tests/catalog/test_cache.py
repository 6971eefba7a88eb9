"""The catalog cache (catalog/cache/): warm reads send no SQL, and are never stale.

These tests run in the test's transaction, against the suite's Redis:
writes made through the services retire entries at once (inside an open
transaction they do so immediately, and again at commit). The writes that
only the database sees, delivered by NOTIFY at commit, are in
test_cache_listener.py; 50 racing requests in test_cache_stampede.py.
"""

import time
from contextlib import ExitStack, contextmanager
from decimal import Decimal
from pathlib import Path

import pytest
from django.core.cache import cache
from django.db import connection, connections
from django.test.utils import CaptureQueriesContext

from catalog import cache as catalog_cache
from catalog.cache import Change, reads, store, versions_bump
from catalog.models import StockLevel
from shop import replica
from shop.settings.base import redis_cache
from tests.catalog.factories import CategoryFactory, StockLevelFactory
from tests.shop.test_redis_down import start_redis

# The replica too: a read the router sent there would not show on `default`.
ALIASES = ("default", "replica")
pytestmark = pytest.mark.django_db(databases=list(ALIASES))


@pytest.fixture(autouse=True)
def redis_cache_on():
    if not catalog_cache.enabled():
        pytest.skip("the catalog cache needs Redis: REDIS_URL is empty")
    try:
        catalog_cache.stats_reset()
    except catalog_cache.Unavailable:
        pytest.skip("Redis does not answer at REDIS_URL (scripts/services.sh up)")


@contextmanager
def every_query():
    """The statements each alias runs in the block, {alias: [sql]}."""
    with ExitStack() as stack:
        captured = {
            alias: stack.enter_context(CaptureQueriesContext(connections[alias]))
            for alias in ALIASES
        }
        statements = {}
        yield statements
    for alias, context in captured.items():
        statements[alias] = [q["sql"] for q in context.captured_queries]


def sql_sent(statements) -> int:
    return sum(len(sql) for sql in statements.values())


def stocked(name, price, *, on_hand=5, category=None):
    return StockLevelFactory(
        quantity_on_hand=on_hand,
        variant__price=Decimal(price),
        variant__product__name=name,
        variant__product__category=category or CategoryFactory(),
    )


@pytest.fixture
def catalogue():
    lamps = CategoryFactory(slug="lamps", name="Lamps")
    return [
        stocked("Oak Lamp", "30.00", category=lamps),
        stocked("Brass Lamp", "10.00", category=lamps),
        stocked("Teapot", "20.00"),
    ]


def product_url(level):
    return f"/api/v1/products/{level.variant.product.slug}/"


READS = {
    "the category tree": lambda levels: "/api/v1/categories/",
    "a list page of 2": lambda levels: "/api/v1/products/?page_size=2",
    "a list page of 10": lambda levels: "/api/v1/products/?page_size=10",
    "a filtered, ordered list": (
        lambda levels: "/api/v1/products/?category=lamps&ordering=price&in_stock=true"
    ),
    "a search": lambda levels: "/api/v1/products/?search=lamp",
    "a product's detail": lambda levels: product_url(levels[0]),
    "an unknown product (404)": lambda levels: "/api/v1/products/no-such-thing/",
}


@pytest.mark.parametrize("read", READS)
def test_a_repeated_identical_read_sends_no_sql(api_client, catalogue, read):
    url = READS[read](catalogue)
    with every_query() as cold:
        first = api_client.get(url)
    with every_query() as warm:
        again = api_client.get(url)

    assert sql_sent(cold) > 0
    assert sql_sent(warm) == 0, warm
    assert (again.status_code, again.json()) == (first.status_code, first.json())


def test_every_page_of_a_walk_is_cached_with_its_links(api_client, catalogue):
    def walk():
        url, pages = "/api/v1/products/?ordering=price&page_size=1", []
        while url:
            body = api_client.get(url).json()
            pages.append(body)
            url = body["next"]
        return pages

    cold = walk()
    with every_query() as warm_walk:
        warm = walk()

    assert [p["results"][0]["name"] for p in cold] == [
        "Brass Lamp",
        "Teapot",
        "Oak Lamp",
    ]
    assert warm == cold
    assert sql_sent(warm_walk) == 0
    # The way back: a previous link made from a cached page.
    back = api_client.get(cold[-1]["previous"]).json()
    assert back == cold[1]


def test_a_cached_pages_links_are_made_for_the_request_that_reads_it(
    api_client, catalogue
):
    url = "/api/v1/products/?page_size=1"
    api_client.get(url, HTTP_HOST="shop.example")
    api_client.get(url, HTTP_HOST="localhost")  # made the cache's entry
    with every_query() as warm:
        body = api_client.get(url, HTTP_HOST="127.0.0.1").json()
    assert sql_sent(warm) == 0
    assert body["next"].startswith("http://127.0.0.1/api/v1/products/?")


def test_a_staff_stock_change_shows_on_the_anonymous_product_page_at_once(
    api_client, staff_client, catalogue
):
    level = catalogue[0]
    assert api_client.get(product_url(level)).json()["available"] == 5
    api_client.get("/api/v1/products/?search=oak")

    response = staff_client.patch(
        f"/api/v1/stock/{level.variant.sku}/", {"quantity_on_hand": 2}, format="json"
    )

    assert response.status_code == 200, response.json()
    assert api_client.get(product_url(level)).json()["available"] == 2
    (card,) = api_client.get("/api/v1/products/?search=oak").json()["results"]
    assert card["available"] == 2


def test_staff_changes_of_products_and_variants_show_at_once(
    api_client, staff_client, catalogue
):
    level = catalogue[1]
    slug = level.variant.product.slug
    before = api_client.get("/api/v1/products/?ordering=price").json()
    assert [p["name"] for p in before["results"]][0] == "Brass Lamp"
    api_client.get(product_url(level))

    staff_client.patch(
        f"/api/v1/variants/{level.variant.sku}/", {"price": "99.00"}, format="json"
    )
    staff_client.patch(
        f"/api/v1/products/{slug}/", {"name": "Gold Lamp"}, format="json"
    )

    after = api_client.get("/api/v1/products/?ordering=price").json()
    assert [(p["name"], p["price"]) for p in after["results"]][-1] == (
        "Gold Lamp",
        "99.00",
    )
    detail = api_client.get(product_url(level)).json()
    assert (detail["name"], detail["price"]) == ("Gold Lamp", "99.00")


@pytest.fixture
def admin_client():
    from django.test import Client

    from tests.accounts.factories import UserFactory

    client = Client()
    client.force_login(UserFactory(is_staff=True, is_superuser=True))
    return client


def test_admin_changes_show_at_once(api_client, admin_client, catalogue):
    level = catalogue[0]
    category = level.variant.product.category
    assert api_client.get(product_url(level)).json()["available"] == 5
    assert "Lamps" in str(api_client.get("/api/v1/categories/").json())

    changed = admin_client.post(
        f"/admin/catalog/stocklevel/{level.pk}/change/",
        {
            "variant": level.variant_id,
            "warehouse": level.warehouse_id,
            "quantity_on_hand": 8,
            "reserved": 0,
            "version": 0,
            "updated_at_0": "2026-01-01",
            "updated_at_1": "12:00:00",
        },
    )
    renamed = admin_client.post(
        f"/admin/catalog/category/{category.pk}/change/",
        {"name": "Lights", "slug": category.slug, "parent": ""},
    )

    assert (changed.status_code, renamed.status_code) == (302, 302)
    detail = api_client.get(product_url(level)).json()
    assert (detail["available"], detail["category"]["name"]) == (8, "Lights")
    assert "Lights" in str(api_client.get("/api/v1/categories/").json())


def test_a_new_product_answers_at_a_slug_that_was_a_cached_404(
    api_client, staff_client, catalogue
):
    assert api_client.get("/api/v1/products/walnut-desk/").status_code == 404
    staff_client.post(
        "/api/v1/products/",
        {
            "name": "Walnut Desk",
            "category": "lamps",
            "variants": [{"sku": "DESK-1", "price": "120.00", "stock": 1}],
        },
        format="json",
    )
    assert api_client.get("/api/v1/products/walnut-desk/").status_code == 200


def test_a_change_retires_its_products_entries_and_no_other(api_client, catalogue):
    """A reservation's change (a product, not the lists): one card, one detail.

    The change is given as the listener would give it from the triggers'
    NOTIFY (test_cache_listener.py shows they say exactly this).
    """
    changed, other = catalogue[0], catalogue[2]
    list_url = "/api/v1/products/?page_size=10"
    for url in (list_url, product_url(changed), product_url(other)):
        api_client.get(url)
    StockLevel.objects.filter(pk=changed.pk).update(reserved=1)

    versions_bump(Change.of([changed.variant.product_id]))

    with every_query() as other_detail:
        api_client.get(product_url(other))
    with every_query() as page:
        body = api_client.get(list_url).json()
    assert sql_sent(other_detail) == 0
    # The page's entry held: one statement, for the changed product's card.
    (statement,) = [sql for statements in page.values() for sql in statements]
    assert f"IN ({changed.variant.product_id})" in statement
    assert {p["name"]: p["available"] for p in body["results"]}["Oak Lamp"] == 4
    assert api_client.get(product_url(changed)).json()["available"] == 4
    with every_query() as warm_again:
        api_client.get(list_url)
    assert sql_sent(warm_again) == 0


def test_a_fill_that_a_write_overtakes_stores_nothing(catalogue):
    """A write commits, and moves the product's version, while a fill runs.

    The fill's rows are from before the write. It read the clock before
    them, finds the product's version newer, and keeps the entry out of the
    cache: the next read computes it again.
    """
    product = catalogue[0].variant.product
    computed = []

    def compute(overtaken):
        computed.append(overtaken)
        body = {"id": product.pk, "slug": product.slug, "available": 5}
        if overtaken:
            versions_bump(Change.of([product.pk]))
        return body

    reads.product_detail(slug=product.slug, compute=lambda: compute(True))
    reads.product_detail(slug=product.slug, compute=lambda: compute(False))
    reads.product_detail(slug=product.slug, compute=lambda: compute(False))

    # Computed again after the overtaken fill; stored by the one after it.
    assert computed == [True, False]


def test_hits_misses_and_fills_are_counted_for_staff(
    api_client, staff_client, customer_client, catalogue
):
    for _ in range(3):
        api_client.get(product_url(catalogue[0]))
    api_client.get("/api/v1/categories/")

    response = staff_client.get("/api/v1/catalog/cache/stats/")

    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "ok"
    assert body["kinds"]["detail"] == {"lookups": 3, "hits": 2, "misses": 1, "fills": 1}
    assert body["kinds"]["categories"]["misses"] == 1
    assert customer_client.get("/api/v1/catalog/cache/stats/").status_code == 403
    assert api_client.get("/api/v1/catalog/cache/stats/").status_code == 401


@pytest.fixture
def own_redis(tmp_path, settings):
    """The cache on a Redis of this test's own, which it may kill."""
    server = start_redis(tmp_path)
    settings.CACHES = {"default": redis_cache(server.url())}
    yield server
    server.kill()
    store.forget_failures()


def test_with_redis_down_reads_come_from_the_database_then_the_cache_again(
    own_redis, api_client, staff_client, catalogue, monkeypatch
):
    monkeypatch.setattr(store, "RETRY_AFTER", 0.2)
    level = catalogue[0]
    assert api_client.get(product_url(level)).json()["available"] == 5

    own_redis.kill()
    # Not through the API: with Redis down its retiring fails too.
    StockLevel.objects.filter(pk=level.pk).update(quantity_on_hand=3)
    started = time.monotonic()
    with every_query() as down:
        response = api_client.get(product_url(level))
    elapsed = time.monotonic() - started

    assert response.status_code == 200
    assert response.json()["available"] == 3
    assert sql_sent(down) > 0
    assert elapsed < 1, f"a dead Redis cost a read {elapsed:.2f}s"
    for url in ("/api/v1/categories/", "/api/v1/products/"):
        assert api_client.get(url).status_code == 200
    stats = staff_client.get("/api/v1/catalog/cache/stats/").json()
    assert stats == {"status": "down", "kinds": None}

    own_redis.start()  # the same port, empty
    time.sleep(0.25)  # past RETRY_AFTER: this process asks Redis again
    api_client.get(product_url(level))
    with every_query() as back:
        assert api_client.get(product_url(level)).json()["available"] == 3
    assert sql_sent(back) == 0


def test_without_redis_the_catalog_is_read_from_the_database(
    settings, api_client, catalogue
):
    """A local-memory cache is per process: no other process could retire it."""
    settings.CACHES = {
        "default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}
    }
    for _ in range(2):
        with every_query() as queries:
            assert api_client.get(product_url(catalogue[0])).status_code == 200
        assert sql_sent(queries) > 0


ROOT = Path(__file__).resolve().parents[2]


def test_orders_never_read_the_catalog_cache():
    """Checkout counts stock on the rows it locks (orders/locks.py), never on a page.

    test_cache_listener.py shows it: a checkout against a cached page that
    says otherwise.
    """
    sources = [p for p in (ROOT / "orders").rglob("*.py")]
    readers = [
        str(p.relative_to(ROOT))
        for p in sources
        if "catalog.cache" in p.read_text() or "catalog import cache" in p.read_text()
    ]
    assert sources and readers == []


def test_the_keys_name_the_database():
    """Test runs, benchmarks and the development server may share one Redis."""
    name = connection.settings_dict["NAME"]
    assert store.key("v:global") == f"shop:catalog:{name}:v:global"


def test_a_bump_leaves_its_markers_in_the_same_script(settings):
    """The versions a write moves and their read-your-writes markers go together.

    Set by one Lua script (catalog/cache/store.py:bump), they cannot half
    land: a new version whose marker was lost would let another process
    fill it from a replica that has not replayed the write.
    """
    replica.markers_forget()
    change = Change.of([4_000_001])
    scopes = [store.marker_scope(name) for name in change.version_names()]
    assert replica.written_among(scopes) == set()

    versions_bump(change)

    assert replica.written_among(scopes) == set(scopes)
    client = cache.client.get_client(write=True)
    for key in replica.marker_keys(*scopes):
        assert 0 < client.ttl(key) <= settings.READ_YOUR_WRITES_SECONDS
    # A bump of the listener's (written=False) moves versions, leaves no marker.
    cache.delete_many([f"{replica.MARKER_PREFIX}{scope}" for scope in scopes])
    versions_bump(change, written=False)
    assert replica.written_among(scopes) == set()
