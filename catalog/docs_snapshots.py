"""The catalog's docs snapshots: its migrations' DDL (chapters 02 and 04), the
SQL its product selector and the API's keyset pagination send (05, 06), and
the ORM's version of a report (17).

shop/snapshots.py says how `manage.py docs_snapshots` finds this module.
"""

import base64
from decimal import Decimal
from unittest.mock import patch
from urllib.parse import urlencode

from django.db import connections
from django.test.utils import CaptureQueriesContext
from rest_framework.request import Request
from rest_framework.test import APIRequestFactory

from catalog import selectors
from catalog.api.pagination import ProductCursorPagination
from catalog.labs import category_price_summary_orm
from shop.snapshots import (
    pretty_sql,
    queryset_sql,
    show_migrations,
    snapshot,
    with_header,
)

show_migrations("catalog", "0001", "0002")


# The category filter reads the subtree's ids first (catalog.selectors.
# category_subtree_ids), so the SQL it then sends depends on the rows of
# catalog_category. A fixed subtree keeps the snippet the same on every
# database: "lighting" and its two leaves.
LIGHTING_IDS = [4, 5, 6]
# A search's last word, being typed, is looked up in the catalogue's words
# (catalog.selectors.search_plan); the words found are fixed here for the
# same reason, as those of one catalogue whose words starting with "la" or
# "wal" are these.
CATALOGUE_WORDS = ["laminate", "lamp", "lampshade", "walnut"]


def words_starting(prefix: str) -> list[str]:
    return [word for word in CATALOGUE_WORDS if word.startswith(prefix)]


@snapshot("selector-product-list.sql")
def product_list_sql() -> str:
    filters = {
        "category": "lighting",
        "search": "brass lamp",
        "min_price": Decimal("20.00"),
        "max_price": Decimal("200.00"),
        "in_stock": True,
        "ordering": "price",
    }
    call = ", ".join(f"{key}={value!r}" for key, value in filters.items())
    with (
        patch.object(selectors, "category_subtree_ids", return_value=LIGHTING_IDS),
        patch.object(
            selectors, "_catalogue_lexemes", return_value=words_starting("lamp")
        ),
    ):
        queryset = selectors.product_list(**filters)
    return queryset_sql(
        queryset,
        f"catalog.selectors.product_list({call}), the subtree of 'lighting' "
        f"being the categories {LIGHTING_IDS} and the catalogue's words that "
        f"start with 'lamp' {words_starting('lamp')}",
    )


@snapshot("selector-product-search.sql")
def product_search_sql() -> str:
    # "brass lam": the last word is still being typed, so it is a prefix,
    # matched as the catalogue's words that start with it.
    return ranked_search_sql("brass lam", typed="lam")


@snapshot("selector-product-search-one-word.sql")
def product_search_one_word_sql() -> str:
    # One word, or a prefix only one word of the catalogue starts with: the
    # posting index ranks it.
    return ranked_search_sql("walnut", typed="walnut")


def ranked_search_sql(search: str, *, typed: str) -> str:
    """product_list(search=search), `typed` standing for CATALOGUE_WORDS' own."""
    words = words_starting(typed)
    with patch.object(selectors, "_catalogue_lexemes", return_value=words):
        queryset = selectors.product_list(search=search)
    return queryset_sql(
        queryset,
        f"catalog.selectors.product_list(search={search!r}): best matches first, "
        f"the catalogue's words that start with {typed!r} being {words}",
    )


@snapshot("selector-product-page.sql")
def product_page_sql() -> str:
    return paginated_sql(
        "",
        "GET /api/v1/products/ (the first page), "
        "through catalog.api.pagination.ProductCursorPagination",
    )


@snapshot("selector-product-next-page.sql")
def product_next_page_sql() -> str:
    # A cursor is base64 of a query string whose p values are the last row's
    # ordering columns (shop/pagination.py). A fixed position keeps the
    # output stable.
    position = ("2026-01-01T00:00:00+00:00", "4321")
    token = urlencode({"p": position}, doseq=True).encode("ascii")
    cursor = base64.b64encode(token).decode("ascii")
    return paginated_sql(
        "?" + urlencode({"cursor": cursor}),
        f"GET /api/v1/products/?cursor={cursor} (after the product created at "
        f"{position[0]} with id {position[1]}), "
        "through catalog.api.pagination.ProductCursorPagination",
    )


@snapshot("orm-category-price-summary.sql")
def category_price_summary_sql() -> str:
    return queryset_sql(
        category_price_summary_orm(parent_id=1),
        "catalog.labs.category_price_summary_orm(parent_id=1)",
    )


def paginated_sql(query_string: str, source: str) -> str:
    """Return the SQL the product list API sends for one page, as it ran.

    The page is fetched through the API's own paginator, so LIMIT and the
    cursor's WHERE clause are the real ones, not a re-enactment.
    """
    queryset = selectors.product_list()
    # A host from ALLOWED_HOSTS: the paginator builds absolute next/previous links.
    factory = APIRequestFactory(SERVER_NAME="127.0.0.1")
    request = Request(factory.get(f"/api/v1/products/{query_string}"))
    with CaptureQueriesContext(connections[queryset.db]) as captured:
        ProductCursorPagination().paginate_queryset(queryset, request)
    (query,) = [
        q["sql"] for q in captured.captured_queries if "catalog_product" in q["sql"]
    ]
    return with_header(source, pretty_sql(query) + ";")
