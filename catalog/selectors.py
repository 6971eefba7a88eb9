"""Catalog reads: QuerySets (or plain data) whose joins are decided here."""

from django.contrib.postgres.search import SearchQuery
from django.db import connection
from django.db.models import (
    Exists,
    F,
    IntegerField,
    OuterRef,
    Prefetch,
    QuerySet,
    Subquery,
    Sum,
    Value,
)
from django.db.models.expressions import RawSQL
from django.db.models.functions import Coalesce

from catalog.models import Category, Product, ProductVariant, StockLevel
from shop.sql_files import read_sql

# The orderings a client may ask for, each with a unique tie-breaker so that
# keyset (cursor) pagination never skips or repeats a row.
PRODUCT_ORDERINGS = {
    "name": ("name", "id"),
    "-name": ("-name", "-id"),
    "price": ("price", "id"),
    "-price": ("-price", "-id"),
    "newest": ("-created_at", "-id"),
    "oldest": ("created_at", "id"),
}
DEFAULT_PRODUCT_ORDERING = "newest"


def category_tree() -> list[dict]:
    """Return the category forest as nested dicts, read with one recursive CTE."""
    with connection.cursor() as cursor:
        cursor.execute(read_sql("catalog/sql/queries/category_tree_v01.sql"))
        rows = cursor.fetchall()
    nodes, roots = {}, []
    for id_, name, slug, parent_id, depth in rows:
        node = {"id": id_, "name": name, "slug": slug, "depth": depth, "children": []}
        nodes[id_] = node
        # Parents come first (ORDER BY path), so the parent is already in `nodes`.
        (nodes[parent_id]["children"] if parent_id else roots).append(node)
    return roots


def category_get(*, slug: str) -> Category | None:
    return Category.objects.filter(slug=slug).first()


def _available_stock(variant_ref: str):
    """Units on hand minus reserved, summed over warehouses, for the outer variant."""
    per_variant = (
        StockLevel.objects.filter(variant=OuterRef(variant_ref))
        .order_by()
        .values("variant")
        .annotate(total=Sum(F("quantity_on_hand") - F("reserved")))
        .values("total")
    )
    return Coalesce(Subquery(per_variant, output_field=IntegerField()), Value(0))


def product_list(
    *,
    category: str | None = None,
    search: str | None = None,
    min_price=None,
    max_price=None,
    in_stock: bool | None = None,
    ordering: str = DEFAULT_PRODUCT_ORDERING,
) -> QuerySet[Product]:
    """Active products with a `price` (lowest active variant) and `available` units."""
    active_variants = ProductVariant.objects.filter(
        product=OuterRef("pk"), is_active=True
    )
    stock = StockLevel.objects.filter(
        variant__product=OuterRef("pk"), variant__is_active=True
    )
    available = (
        stock.order_by()
        .values("variant__product")
        .annotate(total=Sum(F("quantity_on_hand") - F("reserved")))
        .values("total")
    )
    products = (
        Product.objects.filter(is_active=True)
        # The tsvector is for matching in SQL, never shown: don't ship it.
        .defer("search_document")
        .filter(Exists(active_variants))
        .select_related("category")
        .annotate(
            price=Subquery(active_variants.order_by("price").values("price")[:1]),
            available=Coalesce(
                Subquery(available, output_field=IntegerField()), Value(0)
            ),
        )
    )
    if category:
        subtree = read_sql("catalog/sql/queries/category_subtree_ids_v01.sql")
        products = products.filter(category_id__in=RawSQL(subtree, [category]))
    if search:
        query = SearchQuery(search, search_type="websearch", config="english")
        products = products.filter(search_document=query)
    if min_price is not None:
        products = products.filter(price__gte=min_price)
    if max_price is not None:
        products = products.filter(price__lte=max_price)
    if in_stock is True:
        products = products.filter(
            Exists(stock.filter(quantity_on_hand__gt=F("reserved")))
        )
    elif in_stock is False:
        products = products.exclude(
            Exists(stock.filter(quantity_on_hand__gt=F("reserved")))
        )
    return products.order_by(*PRODUCT_ORDERINGS[ordering])


def product_get(*, slug: str) -> Product | None:
    """One active product with its active variants, each annotated with `available`."""
    variants = (
        ProductVariant.objects.filter(is_active=True)
        .annotate(available=_available_stock("pk"))
        .order_by("price", "sku")
    )
    return (
        product_list()
        .filter(slug=slug)
        .prefetch_related(
            Prefetch("variants", queryset=variants, to_attr="active_variants")
        )
        .first()
    )


def variant_stock_get(*, sku: str) -> ProductVariant | None:
    """A variant with its stock levels per warehouse (staff view, inactive included)."""
    return (
        ProductVariant.objects.filter(sku=sku)
        .prefetch_related(
            Prefetch(
                "stock_levels",
                queryset=StockLevel.objects.select_related("warehouse").order_by(
                    "warehouse__code"
                ),
            )
        )
        .first()
    )


def stock_summary(*, sku: str, warehouse_code: str | None = None) -> dict | None:
    """A SKU's stock: one warehouse's counts if named, else the sum over all.

    `warehouses` always lists each warehouse's own counts. None if the SKU
    does not exist; a warehouse the SKU is not stocked in counts as zero.
    """
    variant = variant_stock_get(sku=sku)
    if variant is None:
        return None
    levels = list(variant.stock_levels.all())
    counted = [
        lv
        for lv in levels
        if warehouse_code is None or lv.warehouse.code == warehouse_code
    ]
    on_hand = sum(lv.quantity_on_hand for lv in counted)
    reserved = sum(lv.reserved for lv in counted)
    return {
        "sku": variant.sku,
        "warehouse": warehouse_code,
        "quantity_on_hand": on_hand,
        "reserved": reserved,
        "available": on_hand - reserved,
        "warehouses": levels,
    }
