"""A one-word search reads the posting index, with ts_rank_cd's own ranks.

catalog_search_posting holds each word of each product's search document
with ts_rank_cd(search_document, that word), kept by the triggers of
catalog/sql/triggers/search_posting_v01.sql. The drift query
(catalog/sql/queries/search_posting_drift_v01.sql) lists every posting that
is not what the documents say; the tests ask it after each kind of write.
A search the posting index answers must return the very pages, in the
very order and with the very ranks, that ranking every match through the
GIN index does: the tests compare the two on whole walks of the pages.
"""

import random
from decimal import Decimal
from typing import NamedTuple

import pytest
from django.db import connection, connections

from catalog.models import Product, SearchPosting
from catalog.selectors import (
    MAX_PREFIX_LEXEMES,
    LexemeAlternatives,
    expression_sql,
    product_list,
    search_plan,
    search_query,
)
from shop.seeding import plan_for, seed_database
from shop.sql_files import read_sql
from tests.catalog.factories import CategoryFactory, ProductFactory, VariantFactory
from tests.concurrency import second_waits_for_first
from tests.dbs import ALL_DATABASES

DRIFT_SQL = "catalog/sql/queries/search_posting_drift_v01.sql"


def drift():
    with connections["default"].cursor() as cursor:
        cursor.execute(read_sql(DRIFT_SQL))
        return cursor.fetchall()


def words_of(product):
    return set(
        SearchPosting.objects.filter(product=product).values_list("lexeme", flat=True)
    )


def _compiled(query):
    return expression_sql(query, using="default")


def ranked_by_gin(text):
    """Every listed match of `text`, best first, ranked by ts_rank_cd itself.

    The tsquery is the shop's own (search_query), compiled; the matching and
    the ranking are done here in SQL, without the posting table.
    """
    tsquery, params = _compiled(search_query(text))
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT p.id, ts_rank_cd(p.search_document, q.query)::float8 AS rank "
            f"FROM catalog_product AS p, (SELECT {tsquery} AS query) AS q "
            "WHERE p.is_active AND p.min_price IS NOT NULL "
            "AND p.search_document @@ q.query "
            "ORDER BY rank DESC, p.id DESC",
            list(params),
        )
        return cursor.fetchall()


def walk(api_client, text, page_size=4):
    """Every page of the search, forward; then back again from the end."""
    url = f"/api/v1/products/?search={text}&page_size={page_size}"
    forward, pages = [], []
    while url:
        body = api_client.get(url).json()
        pages.append(body)
        forward += [p["id"] for p in body["results"]]
        url = body["next"]
    backward = []
    url = pages[-1]["previous"]
    while url:
        body = api_client.get(url).json()
        backward = [p["id"] for p in body["results"]] + backward
        url = body["previous"]
    return forward, backward + [p["id"] for p in pages[-1]["results"]]


@pytest.fixture
def catalogue():
    """Products whose ranks for "lamp" tie and differ, in name and description."""
    category = CategoryFactory()
    rng = random.Random(7)
    texts = [
        ("Lamp", "A lamp."),
        ("Desk lamp", "Reading by the lamp, lamp after lamp."),
        ("Floor lamp", "Tall."),
        ("Lamp shade", "For any lamp."),
        ("Walnut desk", "Pairs with a lamp."),
        ("Oak desk", "Solid."),
        ("Walnut shelf", "No light at all."),
        ("Designer desk", "A walnut desk by a designer."),
        ("Walnut design lamp", "Designed for a desk."),
    ]
    products = []
    for n in range(40):
        name, description = texts[rng.randrange(len(texts))]
        product = ProductFactory(
            category=category, name=f"{name} {n}", description=description
        )
        VariantFactory(product=product)
        products.append(product)
    return products


pytestmark = pytest.mark.django_db


class TestTheIndexAnswersOneWord:
    @pytest.mark.parametrize(
        "text",
        # One lexeme, by the posting index; then prefixes a few words start
        # with, matched as their OR through the GIN index.
        ["lamp", "lamps", "lamp ", "walnut", "oak ", "walnut des", "des", "desk wal"],
    )
    def test_pages_are_the_gin_rankings_pages(self, api_client, catalogue, text):
        ranked = ranked_by_gin(text)
        expected = [id_ for id_, _ in ranked]
        assert expected, "the catalogue has matches"
        forward, backward = walk(api_client, text)
        assert forward == expected
        assert backward == expected
        # The ranks too, whichever way the search was read.
        assert list(product_list(search=text).values_list("id", "rank")) == ranked

    def test_a_cursor_carries_over_when_the_search_changes_path(
        self, api_client, catalogue
    ):
        url = "/api/v1/products/?search=lamp&page_size=4"
        first = api_client.get(url).json()
        assert search_plan("lamp", ranked=True).lexeme == "lamp"
        last = first["results"][-1]["id"]
        position = (dict(ranked_by_gin("lamp"))[last], last)
        # A second word that starts with "lamp": the prefix is now an OR of
        # the two, ranked through the GIN index.
        shade = ProductFactory(
            category=catalogue[0].category, name="Lampshade", description="Linen."
        )
        VariantFactory(product=shade)
        assert search_plan("lamp", ranked=True).lexeme is None

        rest, next_url = [], first["next"]
        while next_url:
            body = api_client.get(next_url).json()
            rest += [p["id"] for p in body["results"]]
            next_url = body["next"]
        after = [id_ for id_, rank in ranked_by_gin("lamp") if (rank, id_) < position]
        assert rest == after

    def test_the_ranks_are_ts_rank_cds_own(self, catalogue):
        expected = ranked_by_gin("lamp")
        page = list(product_list(search="lamp").values_list("id", "rank"))
        assert page == expected
        assert len({rank for _, rank in expected}) > 2, "ranks differ, not just tie"

    def test_filters_still_apply(self, catalogue):
        cheap = {product.pk for product in catalogue[::3]}
        for product in catalogue[::3]:
            VariantFactory(product=product, price=Decimal("5.00"))
        expected = [row for row in ranked_by_gin("lamp") if row[0] in cheap]
        page = product_list(search="lamp", max_price=Decimal("10"))
        assert list(page.values_list("id", "rank")) == expected
        assert expected


class TestWhatASearchStandsFor:
    def test_a_word_is_its_stem(self, catalogue):
        assert search_plan("lamps ", ranked=True).lexeme == "lamp"

    def test_a_prefix_that_one_word_starts_with_is_that_word(self, catalogue):
        assert search_plan("lam", ranked=True).lexeme == "lamp"
        assert search_plan("wal", ranked=True).lexeme == "walnut"

    def test_unranked_a_word_is_only_matched(self, catalogue):
        assert search_plan("lamp", ranked=False).lexeme is None

    def test_a_prefix_of_a_few_words_is_their_or(self, catalogue):
        plan = search_plan("des", ranked=True)
        assert plan.lexeme is None
        assert isinstance(plan.query, LexemeAlternatives)
        assert plan.query.text == "'design' | 'desk'"

    def test_with_whole_words_only_the_prefix_is_rewritten(self, catalogue):
        sql, params = _compiled(search_plan("oak des", ranked=True).query)
        assert "plainto_tsquery" in sql and "::tsquery" in sql
        assert params == ["english", "oak", "'design' | 'desk'"]

    @pytest.mark.parametrize("text", ["walnut des", "des", "desk wal"])
    def test_the_or_and_the_prefix_rank_every_match_alike(self, catalogue, text):
        plan = search_plan(text, ranked=True)
        assert plan.rank_query is not None
        (match, match_params), (rank, rank_params) = (
            _compiled(query) for query in (plan.query, plan.ranked_by)
        )
        with connection.cursor() as cursor:
            cursor.execute(
                f"SELECT ts_rank_cd(search_document, {match}), "
                f"ts_rank_cd(search_document, {rank}) "
                f"FROM catalog_product WHERE search_document @@ {match}",
                [*match_params, *rank_params, *match_params],
            )
            ranks = cursor.fetchall()
        assert ranks, "the catalogue has matches"
        assert all(by_or == by_prefix for by_or, by_prefix in ranks)

    def test_the_or_matches_but_the_prefix_ranks(self, catalogue):
        # The OR is for the GIN index; ts_rank_cd ranks the prefix as typed,
        # which gives the same ranks (the test above compares them).
        plan = search_plan("walnut des", ranked=True)
        assert "catalog_search_prefix" not in _compiled(plan.query)[0]
        sql, params = _compiled(plan.ranked_by)
        assert "catalog_search_prefix" in sql
        assert params == ["english", "walnut", "des"]
        # One lexeme, or nothing rewritten: one query does both.
        assert search_plan("oak", ranked=True).rank_query is None
        assert search_plan("oak desk ", ranked=True).rank_query is None

    def test_a_prefix_of_too_many_words_stays_a_prefix(self, catalogue):
        category = CategoryFactory()
        for n in range(MAX_PREFIX_LEXEMES + 1):
            ProductFactory(category=category, name=f"Zed{chr(97 + n // 26)}{n}x")
        plan = search_plan("zed", ranked=True)
        assert plan.lexeme is None
        assert "catalog_search_prefix" in _compiled(plan.query)[0]

    def test_nothing_in_the_catalogue_is_not_rewritten(self, catalogue):
        plan = search_plan("zebra", ranked=True)
        assert plan.lexeme is None
        assert "catalog_search_prefix" in _compiled(plan.query)[0]
        assert not product_list(search="zebra").exists()

    @pytest.mark.parametrize(
        "query, expected",
        [
            ("'lamp'", ["lamp"]),
            ("'lamp':*", ["lamp"]),
            ("'des':*", ["design", "desk"]),
            ("'zebra':*", []),
            ("'it''s'", ["it's"]),
            ("'a\\\\b'", ["a\\b"]),
            ("'lamp' & 'desk'", None),
            ("'lamp':A", None),
            ("'lamp' <-> 'desk'", None),
            ("!'lamp'", None),
        ],
    )
    def test_the_function_reads_one_operand_and_nothing_else(
        self, catalogue, query, expected
    ):
        with connection.cursor() as cursor:
            cursor.execute("SELECT catalog_search_lexemes(%s::tsquery, 8)", [query])
            assert cursor.fetchone()[0] == expected

    def test_the_function_stops_one_past_its_limit(self, catalogue):
        with connection.cursor() as cursor:
            cursor.execute("SELECT catalog_search_lexemes('d:*'::tsquery, 1)")
            assert cursor.fetchone()[0] == ["design", "desk"]

    def test_whole_words_ask_nothing(self, catalogue, django_assert_num_queries):
        with django_assert_num_queries(1):
            list(product_list(search="walnut desk "))


class TestEachKindOfWrite:
    def test_a_new_product_gets_a_posting_per_word(self):
        product = ProductFactory(name="Brass lamp", description="Bright.")
        assert words_of(product) == {"brass", "lamp", "bright"}
        assert drift() == []

    def test_many_products_in_one_statement(self):
        category = CategoryFactory()
        Product.objects.bulk_create(
            Product(category=category, name=f"Oak table {n}", slug=f"oak-{n}")
            for n in range(50)
        )
        assert SearchPosting.objects.filter(lexeme="oak").count() == 50
        assert drift() == []

    def test_a_rename_keeps_the_words_it_kept_and_swaps_the_rest(self):
        product = ProductFactory(name="Brass lamp", description="Bright.")
        before = posting_writes()
        Product.objects.filter(pk=product.pk).update(name="Brass lantern")
        assert words_of(product) == {"brass", "lantern", "bright"}
        # 'lantern' in, 'lamp' out; 'brass' and 'bright' kept their ranks
        # and were not written at all.
        assert posting_writes() - before == Writes(inserted=1, updated=0, deleted=1)
        assert drift() == []

    def test_a_kept_word_whose_rank_moved_is_rewritten(self):
        product = ProductFactory(name="Brass lamp", description="Bright.")
        before = posting_writes()
        Product.objects.filter(pk=product.pk).update(description="Bright brass.")
        assert posting_writes() - before == Writes(inserted=0, updated=1, deleted=0)
        assert drift() == []

    def test_a_word_moved_from_description_to_name_ranks_higher(self):
        product = ProductFactory(name="Stand", description="For a lamp.")
        before = SearchPosting.objects.get(product=product, lexeme="lamp").rank
        product.name, product.description = "Lamp stand", "Sturdy."
        product.save()
        after = SearchPosting.objects.get(product=product, lexeme="lamp").rank
        assert after > before
        assert drift() == []

    def test_other_updates_do_not_fire_the_trigger(self):
        product = ProductFactory(name="Brass lamp")
        VariantFactory(product=product)
        with connection.cursor() as cursor:
            for assignment in ("is_active = false", "name = name"):
                cursor.execute(
                    f"EXPLAIN (ANALYZE) UPDATE catalog_product SET {assignment} "
                    "WHERE id = %s",
                    [product.pk],
                )
                plan = "\n".join(row for (row,) in cursor.fetchall())
                # EXPLAIN ANALYZE lists each trigger that ran, with its calls.
                assert "catalog_product_postings_update" not in plan, plan
        before = posting_writes()
        product.refresh_from_db()
        product.save()  # a whole-row save of an unchanged name and description
        assert posting_writes() - before == Writes(0, 0, 0)

    def test_a_rename_does_fire_it(self):
        product = ProductFactory(name="Brass lamp")
        with connection.cursor() as cursor:
            cursor.execute(
                "EXPLAIN (ANALYZE) UPDATE catalog_product SET name = 'Oak lamp' "
                "WHERE id = %s",
                [product.pk],
            )
            plan = "\n".join(row for (row,) in cursor.fetchall())
        assert "Trigger catalog_product_postings_update: " in plan, plan
        assert "calls=1" in plan, plan

    def test_raw_sql_writes_and_deletes(self):
        category = CategoryFactory()
        with connection.cursor() as cursor:
            cursor.execute(
                "INSERT INTO catalog_product (category_id, name, slug, description, "
                "is_active, created_at, updated_at) VALUES (%s, 'Walnut lamp', "
                "'walnut-lamp', 'Warm.', true, now(), now()) RETURNING id",
                [category.pk],
            )
            (product_id,) = cursor.fetchone()
            cursor.execute(
                "UPDATE catalog_product SET description = 'Cold.' WHERE id = %s",
                [product_id],
            )
            assert drift() == []
            cursor.execute("DELETE FROM catalog_product WHERE id = %s", [product_id])
        assert not SearchPosting.objects.filter(product_id=product_id).exists()
        assert drift() == []

    def test_an_orm_delete(self):
        product = ProductFactory(name="Brass lamp")
        product.delete()
        assert not SearchPosting.objects.filter(product_id=product.pk).exists()

    def test_a_cleared_description(self):
        product = ProductFactory(name="Brass lamp", description="Bright light.")
        Product.objects.filter(pk=product.pk).update(description="")
        assert words_of(product) == {"brass", "lamp"}
        assert drift() == []


class Writes(NamedTuple):
    inserted: int
    updated: int
    deleted: int

    def __sub__(self, other):
        return Writes(*(a - b for a, b in zip(self, other, strict=True)))


def posting_writes() -> Writes:
    """Rows of catalog_search_posting this transaction wrote so far."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT n_tup_ins, n_tup_upd, n_tup_del FROM pg_stat_xact_user_tables "
            "WHERE relname = 'catalog_search_posting'"
        )
        return Writes(*cursor.fetchone())


@pytest.mark.django_db(transaction=True, databases=ALL_DATABASES)
def test_two_writers_renaming_one_product_leave_the_last_ones_words():
    product = ProductFactory(name="Brass lamp", description="Bright.")
    rows = Product.objects.filter(pk=product.pk)

    errors = second_waits_for_first(
        lambda: rows.update(name="Walnut lantern"),
        lambda: rows.update(description="Dim glow."),
    )

    assert errors == [None, None, None]
    assert words_of(product) == {"walnut", "lantern", "dim", "glow"}
    assert drift() == []


@pytest.mark.slow
@pytest.mark.django_db(transaction=True, databases=ALL_DATABASES)
def test_the_seeds_copy_writes_every_posting():
    seed_database(plan=plan_for("small", products=300, variants=900))
    assert SearchPosting.objects.count() > 300 * 5
    assert drift() == []
