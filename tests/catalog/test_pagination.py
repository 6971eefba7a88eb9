"""Keyset pagination of the product list on the whole ordering tuple.

shop/pagination.py: the cursor carries every ordering column of the last
row, and the next page is one row comparison, `(min_price, id) > (...)`,
never an OFFSET. These tests fill the list with ties on every ordering
column, walk it both ways, and tamper with cursors.
"""

import base64
import re
from datetime import timedelta
from decimal import Decimal
from urllib.parse import parse_qs, quote, urlencode, urlparse

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from catalog.models import Category, Product
from catalog.selectors import PRODUCT_ORDERINGS, product_list
from tests.catalog.factories import CategoryFactory, ProductFactory, VariantFactory

pytestmark = pytest.mark.django_db

ORDERINGS = sorted(set(PRODUCT_ORDERINGS) - {"relevance"})


def cursor(*position, reverse=False):
    """A well-formed cursor (this API's encoding) for a chosen position."""
    tokens = {"p": list(position), **({"r": "1"} if reverse else {})}
    raw = urlencode(tokens, doseq=True)
    return quote(base64.b64encode(raw.encode()).decode())


def tied_catalogue():
    """Twelve products in pairs and triples of equal price, name and moment."""
    category = CategoryFactory()
    moment = timezone.now() - timedelta(days=3)
    products = []
    for n in range(12):
        product = ProductFactory(
            category=category,
            name=f"Lamp {n // 3}",
            created_at=moment + timedelta(hours=n // 4),
        )
        VariantFactory(product=product, price=Decimal(10 + n % 2))
        products.append(product)
    return products


def walk(client, url):
    """Follow `next` links from `url`; return the pages' slugs and the last body."""
    pages = []
    while url:
        body = client.get(url).json()
        pages.append([p["slug"] for p in body["results"]])
        last, url = body, body["next"]
    return pages, last


def walk_back(client, body):
    pages = []
    while body["previous"]:
        body = client.get(body["previous"]).json()
        pages.append([p["slug"] for p in body["results"]])
    return pages


@pytest.mark.parametrize("ordering", ORDERINGS)
def test_every_product_once_in_order_forward_and_back(api_client, ordering):
    tied_catalogue()
    expected = list(product_list(ordering=ordering).values_list("slug", flat=True))

    pages, last = walk(api_client, f"/api/v1/products/?ordering={ordering}&page_size=5")

    assert [slug for page in pages for slug in page] == expected
    assert [len(page) for page in pages] == [5, 5, 2]
    # Back from the last page: the same pages, newest visited first.
    assert walk_back(api_client, last) == pages[-2::-1]


def test_the_next_page_is_a_row_comparison_on_every_column_with_no_offset(
    api_client,
):
    tied_catalogue()
    first = api_client.get("/api/v1/products/?ordering=-price&page_size=4").json()

    with CaptureQueriesContext(connection) as captured:
        api_client.get(first["next"])

    (sql,) = [q["sql"] for q in captured.captured_queries]
    assert '("catalog_product"."min_price", "catalog_product"."id") < (' in sql, sql
    assert "OFFSET" not in sql
    assert sql.rstrip().endswith("LIMIT 5")


def test_a_deep_page_costs_one_query_like_the_first(
    api_client, django_assert_num_queries
):
    tied_catalogue()
    url = "/api/v1/products/?ordering=name&page_size=2"
    for _ in range(4):
        url = api_client.get(url).json()["next"]
    with django_assert_num_queries(1):
        body = api_client.get(url).json()
    assert len(body["results"]) == 2


def test_a_cursor_carries_the_whole_tuple(api_client):
    tied_catalogue()
    body = api_client.get("/api/v1/products/?ordering=newest&page_size=3").json()
    token = parse_qs(urlparse(body["next"]).query)["cursor"][0]
    tokens = parse_qs(base64.b64decode(token).decode())
    last = body["results"][-1]

    created_at, id_ = tokens["p"]
    assert int(id_) == last["id"]
    assert created_at == Product.objects.get(pk=last["id"]).created_at.isoformat()


def test_a_page_before_the_first_row_links_to_the_first_page(api_client):
    products = tied_catalogue()
    first = min(p.pk for p in products)
    ten = "10.00"
    url = f"/api/v1/products/?ordering=price&cursor={cursor(ten, first, reverse=True)}"

    body = api_client.get(url).json()

    assert body["results"] == [] and body["previous"] is None
    assert "cursor=" not in body["next"]


class TestTamperedCursors:
    @pytest.mark.parametrize(
        "ordering, token",
        [
            ("price", cursor("10.00")),  # one value for two columns
            ("price", cursor("10.00", "1", "2")),
            ("price", cursor("abc", "1")),
            ("price", cursor("NaN", "1")),
            ("price", cursor("1e400", "1")),
            ("price", cursor("10.001", "1")),  # more places than the column has
            ("price", cursor("10.00", "x")),
            ("price", cursor("10.00", str(2**63))),  # past bigint
            ("price", cursor("10.00", "1", reverse=False) + "%3D%3D%3D"),
            ("newest", cursor("not a date", "1")),
            ("newest", cursor("2026-01-01T00:00:00", "1")),  # no time zone
            ("name", cursor("a\x00b", "1")),
            ("name", cursor("x" * 201, "1")),
            ("relevance", cursor("inf", "1")),
            ("relevance", cursor("1.0", str(2**63))),  # past bigint
            ("price", quote(base64.b64encode(b"p=1&p=2&r=2").decode())),
            ("price", quote(base64.b64encode(b"p=1&p=2&o=5").decode())),
            ("price", quote(base64.b64encode("p=é".encode("latin-1")).decode())),
            ("price", "garbage"),
            ("price", "x" * 5000),
        ],
    )
    def test_a_cursor_this_api_did_not_make_is_a_404(self, api_client, ordering, token):
        tied_catalogue()
        search = "&search=lamp" if ordering == "relevance" else ""
        response = api_client.get(
            f"/api/v1/products/?ordering={ordering}{search}&cursor={token}"
        )
        assert response.status_code == 404, response.content
        assert response.json()["code"] == "not_found"

    def test_a_well_formed_cursor_of_this_api_pages_on(self, api_client):
        products = tied_catalogue()
        token = cursor("10.00", str(max(p.pk for p in products)))
        response = api_client.get(f"/api/v1/products/?ordering=price&cursor={token}")
        assert response.status_code == 200
        assert {p["price"] for p in response.json()["results"]} == {"11.00"}


def test_ranked_search_pages_walk_every_match_once_through_ties(api_client):
    """ts_rank_cd gives many rows one rank (a real): the cursor keeps them apart.

    Read through the driver as a real, the rank came back as the shortest
    text's double (0.4 instead of 0.4000000059604645), the cursor compared
    unequal to every tied row, and page 2 came back empty.
    """
    category = CategoryFactory()
    for n in range(9):
        product = ProductFactory(
            category=category, name=f"Thing {n}", description="A lamp."
        )
        VariantFactory(product=product)
    for n in range(3):
        product = ProductFactory(category=category, name=f"Lamp {n}")
        VariantFactory(product=product)

    pages, last = walk(api_client, "/api/v1/products/?search=lamp&page_size=2")

    seen = [slug for page in pages for slug in page]
    assert len(seen) == len(set(seen)) == 12
    names = dict(product_list(search="lamp").values_list("slug", "name"))
    # Name matches (weight A) rank above description matches (weight B).
    assert {names[slug] for slug in seen[:3]} == {"Lamp 0", "Lamp 1", "Lamp 2"}
    assert walk_back(api_client, last) == pages[-2::-1]


def subtree_catalogue():
    """A root, two middles, three leaves; equal prices across categories."""
    root = CategoryFactory(slug="home")
    middle = CategoryFactory(slug="lighting", parent=root)
    other = CategoryFactory(slug="furniture", parent=root)
    leaves = [
        CategoryFactory(slug="desk-lamps", parent=middle),
        CategoryFactory(slug="floor-lamps", parent=middle),
        CategoryFactory(slug="desks", parent=other),
    ]
    for n in range(17):
        # The middle category holds products too, and prices tie across
        # categories: the merge must keep (price, id) order through ties.
        category = (middle, *leaves)[n % 4]
        product = ProductFactory(category=category, name=f"Thing {n}")
        VariantFactory(product=product, price=Decimal(10 + n % 5))
    ProductFactory(category=leaves[0], is_active=False)


@pytest.mark.parametrize("ordering", ["price", "-price"])
@pytest.mark.parametrize("category", ["home", "lighting", "desk-lamps"])
def test_a_subtree_in_price_order_is_merged_per_category_and_walks_once(
    api_client, ordering, category
):
    subtree_catalogue()
    # The order computed here, from every listed product of the subtree.
    subtree = {category} | set(
        Category.objects.filter(parent__slug=category).values_list("slug", flat=True)
    )
    subtree |= set(
        Category.objects.filter(parent__slug__in=subtree).values_list("slug", flat=True)
    )
    rows = Product.objects.filter(category__slug__in=subtree, is_active=True)
    keyed = sorted((p.min_price, p.pk, p.slug) for p in rows)
    expected = [slug for _, _, slug in (keyed if ordering == "price" else keyed[::-1])]
    assert len(expected) > 3

    url = f"/api/v1/products/?category={category}&ordering={ordering}&page_size=3"
    pages, last = walk(api_client, url)

    assert [slug for page in pages for slug in page] == expected
    assert walk_back(api_client, last) == pages[-2::-1]


def test_a_partitioned_page_reads_one_keyset_page_per_category(api_client):
    subtree_catalogue()
    first = api_client.get(
        "/api/v1/products/?category=lighting&ordering=-price&page_size=2"
    ).json()

    with CaptureQueriesContext(connection) as captured:
        api_client.get(first["next"])

    sql = [q["sql"] for q in captured.captured_queries if "catalog_product" in q["sql"]]
    page = sql[-1]
    # The middle category and its two leaves: one branch, run for each of
    # the three by a LATERAL join, with the keyset condition and the page's
    # LIMIT inside it.
    ids = set(
        Category.objects.filter(
            slug__in=["lighting", "desk-lamps", "floor-lamps"]
        ).values_list("pk", flat=True)
    )
    unnested = re.search(r"unnest\('\{([\d,]+)\}'", page)
    assert {int(id_) for id_ in unnested.group(1).split(",")} == ids, page
    lateral = page[page.index("CROSS JOIN LATERAL") :]
    assert '("catalog_product"."min_price", "catalog_product"."id") < (' in lateral
    assert lateral.count("LIMIT 3") == 2, page
    assert "OFFSET" not in page
