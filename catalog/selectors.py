"""Catalog reads: QuerySets (or plain data) whose joins are decided here."""

import re
from dataclasses import dataclass

from django.contrib.postgres.fields import ArrayField
from django.contrib.postgres.search import SearchQuery, SearchRank
from django.db import connections, router
from django.db.models import (
    BigIntegerField,
    ExpressionWrapper,
    F,
    FloatField,
    Func,
    IntegerField,
    OuterRef,
    Prefetch,
    QuerySet,
    Subquery,
    Sum,
    TextField,
    Value,
)
from django.db.models.functions import Cast, Coalesce
from django.db.models.sql import Query

from catalog.models import LISTED, Category, Product, ProductVariant, StockLevel
from shop.pagination import keyset_partition
from shop.sql_files import read_sql

# The orderings a client may ask for, each with a unique tie-breaker so that
# keyset (cursor) pagination never skips or repeats a row, and each one an
# index of catalog/models.py reads in order (a descending one backwards).
PRODUCT_ORDERINGS = {
    "name": ("name", "id"),
    "-name": ("-name", "-id"),
    "price": ("min_price", "id"),
    "-price": ("-min_price", "-id"),
    "newest": ("-created_at", "-id"),
    "oldest": ("created_at", "id"),
    # Best match first: only with `search`, and the default ordering then.
    "relevance": ("-rank", "-id"),
}
# Relevance read from the posting index (a search of one word): the same
# rank and the same product id, named as the posting row holds them, so
# that the keyset condition is on the index's own columns and a deep page
# starts inside the index instead of probing every product before it.
POSTING_RELEVANCE = ("-rank", "-ranked_id")
DEFAULT_PRODUCT_ORDERING = "newest"
# The orderings catalog_product_cat_price_idx continues after the category.
PARTITIONED_ORDERINGS = {"price", "-price"}
# The words of a search, for the text search parser: letters and digits
# only, so no character of the tsquery syntax (& | ! : ' ( ) <) gets through.
SEARCH_WORD = re.compile(r"[^\W_]+")
# Characters a word being typed needs before it matches as a prefix.
MIN_PREFIX = 3
# A prefix that at most this many words of the catalogue start with is
# matched as their OR (search_plan); one with more stays a prefix, which
# the GIN index reads as one range of its entries.
MAX_PREFIX_LEXEMES = 32


def category_tree() -> list[dict]:
    """Return the category forest as nested dicts, read with one recursive CTE."""
    # Raw SQL skips the routers unless asked: read where the ORM would.
    with connections[router.db_for_read(Category)].cursor() as cursor:
        cursor.execute(read_sql("catalog/sql/queries/category_tree_v01.sql"))
        rows = cursor.fetchall()
    nodes, roots = {}, []
    for id_, name, slug, parent_id, depth in rows:
        node = {"id": id_, "name": name, "slug": slug, "depth": depth, "children": []}
        nodes[id_] = node
        # Parents come first (ORDER BY path), so the parent is already in `nodes`.
        (nodes[parent_id]["children"] if parent_id else roots).append(node)
    return roots


def category_subtree_ids(*, slug: str) -> list[int]:
    """The ids of the category `slug` and of all its descendants (none if unknown)."""
    with connections[router.db_for_read(Category)].cursor() as cursor:
        cursor.execute(
            read_sql("catalog/sql/queries/category_subtree_ids_v01.sql"), [slug]
        )
        return [id_ for (id_,) in cursor.fetchall()]


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


def _active_stock():
    """The stock rows of the outer product's active variants."""
    return StockLevel.objects.filter(
        variant__product=OuterRef("pk"), variant__is_active=True
    )


def _product_available():
    """Units available of the outer product, over its active variants."""
    total = (
        _active_stock()
        .order_by()
        .values("variant__product")
        .annotate(total=Sum(F("quantity_on_hand") - F("reserved")))
        .values("total")
    )
    return Coalesce(Subquery(total, output_field=IntegerField()), Value(0))


class PrefixSearchQuery(SearchQuery):
    """A word still being typed, as a prefix: catalog_search_prefix(word).

    catalog/sql/functions/search_prefix_v01.sql: the word's English stem as
    a prefix ("lamps" -> 'lamp':*), or the word itself for a stop word.
    """

    SEARCH_TYPES = {"prefix": "catalog_search_prefix"}

    def __init__(self, word: str):
        super().__init__(word, search_type="prefix")


def search_terms(text: str) -> tuple[list[str], str | None]:
    """The whole words of a search, and the word still being typed, if any.

    While the text ends in a word, that word may be incomplete: from
    MIN_PREFIX characters on, it matches every word that starts with it ("wal"
    finds "Walnut"). Shorter, a prefix would match much of the catalogue,
    and every match must be ranked, so it is matched as a word.
    """
    words = SEARCH_WORD.findall(text)
    typing = bool(words) and bool(SEARCH_WORD.fullmatch(text[-1]))
    last = words.pop() if typing and len(words[-1]) >= MIN_PREFIX else None
    return words, last


def search_query(text: str) -> SearchQuery:
    """The tsquery for what a shopper typed, matched as they type.

    Every word must match, stemmed the English way ("lamps" finds "Lamp");
    the last one as a prefix while it is being typed (search_terms). The GIN
    index on search_document answers both kinds of term.
    """
    words, last = search_terms(text)
    # No words at all is an empty query, which matches nothing.
    query = SearchQuery(" ".join(words), config="english")
    if last is None:
        return query
    prefix = PrefixSearchQuery(last)
    return prefix if not words else query & prefix


class LexemeAlternatives(SearchQuery):
    """'desk' | 'design': lexemes as they are, OR-ed, as a tsquery constant.

    Cast from text, which parses nothing and stems nothing: the lexemes come
    from the catalogue's own documents (catalog_search_lexemes).
    """

    def __init__(self, lexemes):
        self.text = " | ".join(_quoted(lexeme) for lexeme in lexemes)
        super().__init__(self.text)

    def as_sql(self, compiler, connection, *args, **kwargs):
        return "%s::tsquery", [self.text]


def _quoted(lexeme: str) -> str:
    """A lexeme in tsquery's input syntax: quoted, quotes and backslashes doubled."""
    return "'" + lexeme.replace("\\", "\\\\").replace("'", "''") + "'"


@dataclass(frozen=True)
class SearchPlan:
    """How a search is matched, and whether the posting index ranks it."""

    # What the GIN index matches.
    query: SearchQuery
    # The one lexeme the search stands for, when it stands for one: its
    # best products are the first rows of catalog_posting_rank_idx.
    lexeme: str | None = None
    # What ts_rank_cd ranks the matches with, when not `query`: the prefix
    # as typed. Its ranks are the OR's (the OR is every lexeme of the
    # catalogue that starts with it), and ts_rank_cd computes them faster
    # (the lab search-postings times both): every match of a search as
    # typed is ranked, and ranking is most of its statement (chapter 06).
    rank_query: SearchQuery | None = None

    @property
    def ranked_by(self) -> SearchQuery:
        return self.query if self.rank_query is None else self.rank_query


def search_plan(text: str, *, ranked: bool, using: str | None = None) -> SearchPlan:
    """The search's query, with its last term resolved against the catalogue.

    A search of one word, or of one prefix that one word of the catalogue
    starts with, is one lexeme: ranked, the posting index answers it. A
    prefix that a few words start with ('des':* for desk and design) is
    rewritten as their OR for matching, which matches the same products
    and which the GIN index reads one entry per word; the matches are still
    ranked with the prefix, the cheaper query to rank (SearchPlan). Either is
    asked of catalog/sql/functions/search_lexemes_v01.sql in one statement;
    a search of several whole words asks nothing. `using`: the database to
    ask, the router's choice unless given.
    """
    words, last = search_terms(text)
    query = search_query(text)
    if last is None and not (ranked and len(words) == 1):
        return SearchPlan(query)
    term = PrefixSearchQuery(last) if last is not None else query
    lexemes = _catalogue_lexemes(term, using or router.db_for_read(Product))
    if not lexemes:
        return SearchPlan(query)
    if ranked and len(lexemes) == 1 and len(words) + (last is not None) == 1:
        return SearchPlan(query, lexeme=lexemes[0])
    if last is None or len(lexemes) > MAX_PREFIX_LEXEMES:
        return SearchPlan(query)
    alternatives = LexemeAlternatives(lexemes)
    if not words:
        return SearchPlan(alternatives, rank_query=query)
    return SearchPlan(
        SearchQuery(" ".join(words), config="english") & alternatives,
        rank_query=query,
    )


def expression_sql(expression, *, using: str) -> tuple[str, list]:
    """An expression over products (a search query, a function call), as the
    SQL and the parameters Django sends for it to the database `using`."""
    scratch = Query(Product)
    sql, params = scratch.get_compiler(using=using).compile(
        expression.resolve_expression(scratch)
    )
    return sql, list(params)


def _catalogue_lexemes(term: SearchQuery, using: str) -> list[str] | None:
    """catalog_search_lexemes(term): what a one-term query stands for."""
    call = Func(
        term,
        Value(MAX_PREFIX_LEXEMES),
        function="catalog_search_lexemes",
        output_field=ArrayField(TextField()),
    )
    sql, params = expression_sql(call, using=using)
    with connections[using].cursor() as cursor:
        cursor.execute(f"SELECT {sql}", params)
        return cursor.fetchone()[0]


def product_list(
    *,
    category: str | None = None,
    search: str | None = None,
    min_price=None,
    max_price=None,
    in_stock: bool | None = None,
    ordering: str | None = None,
    lexemes_from: str | None = None,
) -> QuerySet[Product]:
    """Listed products with their `min_price` and `available` units.

    Listed: active, with an active variant (min_price is then not NULL).
    `ordering` is a key of PRODUCT_ORDERINGS; by default the best matches
    first when searching ("relevance", ranked by ts_rank_cd), else the
    newest. Each filter and ordering is one an index answers
    (catalog/models.py; `make plans` checks it on the large seed).
    `lexemes_from`: the database a search's words are looked up in before
    the query is built (search_plan), the router's choice unless a caller
    reads its own uncommitted rows (a lab, in its transaction).
    """
    ordering = ordering or ("relevance" if search else DEFAULT_PRODUCT_ORDERING)
    if ordering == "relevance" and not search:
        raise ValueError("ordering by relevance needs a search")
    products = (
        Product.objects.filter(LISTED)
        # The tsvector is for matching in SQL, never shown: don't ship it.
        .defer("search_document")
        # Subqueries in the select list, not joins: the planner evaluates
        # them after ORDER BY and LIMIT, for the page's rows alone. A join to
        # the category would be made for every match a ranked search sorts.
        .annotate(
            category_slug=Subquery(
                Category.objects.filter(pk=OuterRef("category_id")).values("slug")
            ),
            available=_product_available(),
        )
    )
    if category:
        # The ids first, in a query of their own: inlined as a subquery, the
        # recursive CTE's row count is a guess (200 categories), the planner
        # took a leaf for half the catalogue and walked the price index past
        # tens of thousands of other products. A list of ids has statistics.
        ids = category_subtree_ids(slug=category)
        if ordering in PARTITIONED_ORDERINGS and not search and in_stock is not False:
            # A subtree in price order: one page per category from
            # (category, min_price, id), merged (shop/pagination.py). In one
            # read, the planner walked the price index of the whole
            # catalogue past every cheaper or dearer category's products.
            # Not with a search or in_stock=false: each branch would walk
            # its category's prices testing every row, where the GIN index
            # or the small sold-out index finds the few rows at once.
            products = keyset_partition(products, "category_id", ids)
        else:
            products = products.filter(category_id__in=ids)
    if search:
        plan = search_plan(search, ranked=ordering == "relevance", using=lexemes_from)
        query = plan.query
        if plan.lexeme is not None:
            # One lexeme: its products in rank order, from the posting
            # index, a page at a time (search_posting_v01.sql). The rank is
            # the one ts_rank_cd gives below, stored.
            return _product_filters(
                products.filter(search_postings__lexeme=plan.lexeme).annotate(
                    rank=F("search_postings__rank"),
                    # As a bigint, which the keyset's cursor is checked
                    # against (the foreign key's field has no range).
                    ranked_id=ExpressionWrapper(
                        F("search_postings__product_id"),
                        output_field=BigIntegerField(),
                    ),
                ),
                min_price=min_price,
                max_price=max_price,
                in_stock=in_stock,
            ).order_by(*POSTING_RELEVANCE)
        products = products.filter(search_document=query)
        if ordering == "relevance":
            # ts_rank_cd: how close together the words occur (cover
            # density), a name match (weight A) counting more than one in
            # the description (B). It returns a real, which the driver reads
            # through its shortest text ("0.4"): a different double from the
            # real itself, so a cursor made from it would compare unequal to
            # every row it ties with. As double precision, the value read is
            # the value compared.
            rank = SearchRank(F("search_document"), plan.ranked_by, cover_density=True)
            products = products.annotate(rank=Cast(rank, FloatField()))
    return _product_filters(
        products, min_price=min_price, max_price=max_price, in_stock=in_stock
    ).order_by(*PRODUCT_ORDERINGS[ordering])


def _product_filters(products, *, min_price, max_price, in_stock):
    if min_price is not None:
        products = products.filter(min_price__gte=min_price)
    if max_price is not None:
        products = products.filter(min_price__lte=max_price)
    if in_stock is not None:
        # The column the stock triggers keep (catalog_product.in_stock):
        # true when an active variant has a unit available somewhere.
        products = products.filter(in_stock=in_stock)
    return products


def product_get(*, slug: str, listed_only: bool = True) -> Product | None:
    """One product with its variants, each annotated with `available`.

    The shop's page shows a listed product and its active variants. Staff
    (`listed_only=False`) see any product, inactive or without an active
    variant, with all its variants.
    """
    variants = ProductVariant.objects.annotate(available=_available_stock("pk"))
    if listed_only:
        product = product_list().filter(slug=slug).select_related("category")
        variants = variants.filter(is_active=True)
    else:
        product = (
            Product.objects.filter(slug=slug)
            .defer("search_document")
            .select_related("category")
            .annotate(available=_product_available())
        )
    return product.prefetch_related(
        Prefetch(
            "variants",
            queryset=variants.order_by("price", "sku"),
            to_attr="active_variants" if listed_only else "all_variants",
        )
    ).first()


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
