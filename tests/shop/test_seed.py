"""`manage.py seed`: deterministic demo data, written with COPY as shop_app.

The command commits in its own transactions and --reset truncates through
the `owner` alias, so every test here is transactional and lists all the
aliases (tests/dbs.py explains why `owner` must be among them).
"""

import hashlib
import io
import re

import pytest
from django.contrib.auth import authenticate
from django.contrib.postgres.search import SearchQuery
from django.core.management import CommandError, call_command
from django.db import IntegrityError, connections
from django.db.models import Count, F, Q, Sum

from catalog.models import (
    Category,
    Product,
    ProductVariant,
    Review,
    StockLevel,
    Warehouse,
)
from shop.accounts.models import Address, Customer, User
from shop.seeding import DEMO_LOGINS, SCALES, Plan, plan_for
from shop.seeding import runner as seeding_runner
from shop.seeding import tables as seeding_tables
from shop.seeding.plan import MAX_VARIANTS_PER_PRODUCT
from shop.seeding.vocabulary import CATEGORY_TREE
from tests.catalog.factories import ProductFactory
from tests.dbs import ALL_DATABASES

seeds_database = pytest.mark.django_db(transaction=True, databases=ALL_DATABASES)
SMALL = SCALES["small"]


def seed(*args, **options):
    """Run the command; return what it printed."""
    out = io.StringIO()
    call_command("seed", *args, stdout=out, stderr=io.StringIO(), **options)
    return out.getvalue()


def fingerprint():
    """Hash every seeded value that the seed decides: names, SKUs, prices, stock."""
    parts = [
        StockLevel.objects.order_by("variant__sku", "warehouse__code").values_list(
            "variant__product__category__slug",
            "variant__product__slug",
            "variant__product__name",
            "variant__product__description",
            "variant__product__created_at",
            "variant__sku",
            "variant__name",
            "variant__price",
            "warehouse__code",
            "quantity_on_hand",
            "reserved",
            "updated_at",
        ),
        Address.objects.order_by("customer__user__email", "line1").values_list(
            "customer__user__email",
            "customer__user__date_joined",
            "customer__phone",
            "line1",
            "line2",
            "city",
            "postal_code",
            "country",
            "is_default",
        ),
        Review.objects.order_by("customer__user__email", "product__slug").values_list(
            "customer__user__email", "product__slug", "rating", "title", "created_at"
        ),
    ]
    return hashlib.sha256(repr([list(part) for part in parts]).encode()).hexdigest()


def assert_counts_match(plan: Plan):
    dual_stocked = round(plan.variants * plan.second_warehouse_share)
    second_addresses = round(plan.customers * 0.4)
    assert Product.objects.count() == plan.products
    assert ProductVariant.objects.count() == plan.variants
    assert StockLevel.objects.count() == plan.variants + dual_stocked
    # Two demo logins; the demo customer is a customer too.
    assert User.objects.count() == plan.customers + 2
    assert Customer.objects.count() == plan.customers + 1
    assert Address.objects.count() == plan.customers + 1 + second_addresses
    assert Review.objects.count() == plan.reviews


@seeds_database
def test_seed_small_writes_the_planned_rows_and_prints_the_demo_logins():
    output = seed(scale="small")

    assert_counts_match(SMALL)
    assert 20 <= Category.objects.count() <= 30
    for login in DEMO_LOGINS:
        assert f"{login.email} / {login.password}" in output


@seeds_database
def test_the_category_tree_has_three_levels_and_products_sit_on_leaves():
    seed(scale="small")

    roots = Category.objects.filter(parent=None)
    middles = Category.objects.filter(parent__in=roots)
    leaves = Category.objects.filter(parent__in=middles)
    assert roots.count() + middles.count() + leaves.count() == Category.objects.count()
    assert not Category.objects.filter(parent__in=leaves).exists()
    assert not Product.objects.exclude(category__in=leaves).exists()


@seeds_database
def test_exactly_one_default_warehouse_and_it_is_main():
    seed(scale="small")

    assert 2 <= Warehouse.objects.count() <= 3
    assert list(Warehouse.objects.filter(is_default=True).values_list("code")) == [
        ("MAIN",)
    ]


@seeds_database
def test_stock_makes_in_stock_filtering_meaningful():
    seed(scale="small")

    variants = ProductVariant.objects.annotate(
        rows=Count("stock_levels"),
        in_main=Count("stock_levels", filter=Q(stock_levels__warehouse__code="MAIN")),
        available=Sum(
            F("stock_levels__quantity_on_hand") - F("stock_levels__reserved")
        ),
    )
    assert not variants.exclude(in_main=1).exists()
    assert variants.filter(rows=2).exists()
    assert variants.filter(available=0).exists()
    assert variants.filter(available__gt=0).exists()
    # Sold out in every warehouse, not merely somewhere.
    assert variants.filter(rows=2, available=0).exists()


@seeds_database
def test_seeded_values_have_the_shapes_the_api_promises():
    seed(scale="small")

    skus = ProductVariant.objects.values_list("sku", flat=True)
    assert all(re.fullmatch(r"[A-Z0-9][A-Z0-9-]*", sku) for sku in skus)
    prices = ProductVariant.objects.values_list("price", flat=True)
    assert {price.as_tuple().exponent for price in prices} == {-2}
    assert Product.objects.values("slug").distinct().count() == SMALL.products
    # One default address per customer (the database allows at most one).
    assert not Customer.objects.exclude(addresses__is_default=True).exists()
    ratings = set(Review.objects.values_list("rating", flat=True))
    assert ratings <= {1, 2, 3, 4, 5}
    assert len(ratings) > 1


@seeds_database
def test_full_text_search_finds_seeded_products_by_english_words():
    seed(scale="small")

    lamp = Product.objects.filter(name__icontains="lamp").order_by("pk").first()
    # "lamps" finds "Lamp": the english configuration stems both to "lamp".
    found = Product.objects.filter(search_document=SearchQuery("lamps"))
    assert lamp in found


@seeds_database
def test_the_same_seed_gives_the_same_rows():
    seed(scale="small")
    first = fingerprint()

    seed(scale="small", reset=True)
    assert fingerprint() == first

    seed(scale="small", reset=True, seed=7)
    assert fingerprint() != first


@seeds_database
def test_if_empty_leaves_a_seeded_database_alone():
    seed(scale="small")
    before = fingerprint()

    output = seed(scale="small", if_empty=True, seed=7)

    assert "nothing seeded" in output
    assert fingerprint() == before
    assert_counts_match(SMALL)


@seeds_database
def test_if_empty_seeds_an_empty_database():
    seed(scale="small", if_empty=True)

    assert_counts_match(SMALL)


@seeds_database
def test_refuses_a_non_empty_database_without_reset_or_if_empty():
    ProductFactory()

    with pytest.raises(CommandError, match=r"--reset.*--if-empty"):
        seed(scale="small")

    assert Product.objects.count() == 1
    assert not User.objects.exists()


@seeds_database
def test_reset_replaces_whatever_was_there():
    stray = ProductFactory(name="Not seeded")
    seed(scale="small", reset=True)

    assert not Product.objects.filter(pk=stray.pk, name="Not seeded").exists()
    assert_counts_match(SMALL)
    # RESTART IDENTITY: the first seeded product got the first id again.
    assert Product.objects.order_by("pk").first().pk == 1


@seeds_database
def test_demo_logins_authenticate():
    seed(scale="small")

    staff_login, customer_login = DEMO_LOGINS
    staff = authenticate(email=staff_login.email, password=staff_login.password)
    assert staff is not None
    assert staff.is_staff
    assert staff.is_superuser
    customer = authenticate(
        email=customer_login.email, password=customer_login.password
    )
    assert customer is not None
    assert not customer.is_staff
    assert customer.customer.addresses.get(is_default=True).country == "US"
    # Seeded customers share the demo customer's password (one hash).
    seeded = User.objects.filter(email__endswith="@example.com").first()
    assert authenticate(email=seeded.email, password=customer_login.password)
    assert authenticate(email=staff_login.email, password="wrong") is None


@seeds_database
def test_the_app_keeps_inserting_after_a_seed():
    seed(scale="small")

    # Seeded keys came from the sequences, so the next INSERT does not collide.
    product = ProductFactory()

    assert product.pk > SMALL.products


@seeds_database
def test_a_mid_size_plan_takes_the_same_path_as_large():
    plan = plan_for(
        "large", products=3_000, variants=9_500, customers=1_000, reviews=4_000
    )

    seed(
        scale="large",
        products=plan.products,
        variants=plan.variants,
        customers=plan.customers,
        reviews=plan.reviews,
    )

    assert_counts_match(plan)
    per_product = Product.objects.annotate(n=Count("variants")).aggregate(
        low=Count("pk", filter=Q(n=1)), high=Count("pk", filter=Q(n=5))
    )
    assert per_product["low"] > 0
    assert per_product["high"] > 0


@seeds_database
def test_a_failed_phase_leaves_nothing_half_written(monkeypatch):
    def write_some_reviews_then_fail(writer, **kwargs):
        real_seed_reviews(writer, **kwargs)
        raise IntegrityError("simulated failure after writing reviews")

    real_seed_reviews = seeding_runner.seed_reviews
    monkeypatch.setattr(seeding_runner, "seed_reviews", write_some_reviews_then_fail)

    with pytest.raises(CommandError, match=r"reviews phase.*--reset"):
        seed(scale="small")

    assert not Review.objects.exists()
    # Earlier phases committed whole.
    assert Product.objects.count() == SMALL.products
    assert Customer.objects.count() == SMALL.customers + 1


@pytest.mark.parametrize(
    "overrides",
    [
        {"variants": 10},  # fewer variants than products
        {"variants": 5_000},  # more than five per product
        {"reviews": 1_000_000},  # more than customer x product pairs allow
    ],
)
def test_impossible_plans_are_refused_before_touching_the_database(overrides):
    with pytest.raises(CommandError):
        seed(scale="small", **overrides)


@seeds_database
def test_reset_fails_fast_while_another_session_uses_the_tables(monkeypatch):
    monkeypatch.setattr(seeding_tables, "RESET_LOCK_TIMEOUT", "200ms")
    app = connections["default"]
    other = app.get_new_connection(app.get_connection_params())
    try:
        # An open transaction that has read a table blocks TRUNCATE on it.
        other.execute("SELECT count(*) FROM catalog_product")

        with pytest.raises(CommandError, match="Stop the sessions using them"):
            seed(scale="small", reset=True)
    finally:
        other.rollback()
        other.close()
    assert not Product.objects.exists()


def test_every_leaf_has_enough_options_for_the_largest_product():
    # A product draws its variants' options without repeats; SKUs depend on it.
    leaves = [
        leaf
        for middles in CATEGORY_TREE.values()
        for leaf_list in middles.values()
        for leaf in leaf_list
    ]
    assert all(len(leaf.options) >= MAX_VARIANTS_PER_PRODUCT for leaf in leaves)
    assert len({leaf.sku_prefix for leaf in leaves}) == len(leaves)
