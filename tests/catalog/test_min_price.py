"""catalog_product.min_price never drifts from its variants.

The triggers of catalog/sql/triggers/product_min_price_v01.sql keep it;
catalog/sql/queries/product_min_price_drift_v01.sql recomputes it from the
variants and lists every product where the two disagree. Each test writes
variants some way (the ORM, raw SQL, COPY, concurrent transactions) and
then asks that query, which must come back empty.
"""

import random
from decimal import Decimal

import pytest
from django.db import connection, connections, transaction
from django.utils import timezone

from catalog.models import Product, ProductVariant
from shop.seeding import plan_for, seed_database
from shop.sql_files import read_sql
from tests.catalog.factories import (
    CategoryFactory,
    ProductFactory,
    StockLevelFactory,
    VariantFactory,
)
from tests.concurrency import run_concurrently, second_waits_for_first
from tests.dbs import ALL_DATABASES

DRIFT_SQL = "catalog/sql/queries/product_min_price_drift_v01.sql"


def drift(using="default"):
    with connections[using].cursor() as cursor:
        cursor.execute(read_sql(DRIFT_SQL))
        return cursor.fetchall()


def min_price(product):
    return Product.objects.values_list("min_price", flat=True).get(pk=product.pk)


@pytest.mark.django_db
class TestEachKindOfWrite:
    def test_an_insert_sets_the_lowest_active_price(self):
        product = ProductFactory()
        assert min_price(product) is None
        VariantFactory(product=product, price=Decimal("30.00"))
        ProductVariant.objects.bulk_create(
            [
                ProductVariant(product=product, sku="CHEAP-1", price=Decimal("12.50")),
                ProductVariant(
                    product=product,
                    sku="INACTIVE-1",
                    price=Decimal("1.00"),
                    is_active=False,
                ),
            ]
        )
        assert min_price(product) == Decimal("12.50")

    def test_price_changes_activation_and_deletion_follow(self):
        product = ProductFactory()
        cheap = VariantFactory(product=product, price=Decimal("10.00"))
        dear = VariantFactory(product=product, price=Decimal("20.00"))

        ProductVariant.objects.filter(pk=cheap.pk).update(price=Decimal("25.00"))
        assert min_price(product) == Decimal("20.00")
        ProductVariant.objects.filter(pk=dear.pk).update(is_active=False)
        assert min_price(product) == Decimal("25.00")
        ProductVariant.objects.filter(pk=dear.pk).update(is_active=True)
        assert min_price(product) == Decimal("20.00")
        ProductVariant.objects.filter(pk=dear.pk).delete()
        assert min_price(product) == Decimal("25.00")
        ProductVariant.objects.filter(pk=cheap.pk).update(is_active=False)
        assert min_price(product) is None
        assert drift() == []

    def test_a_variant_moved_to_another_product_updates_both(self):
        left, right = ProductFactory(), ProductFactory()
        moving = VariantFactory(product=left, price=Decimal("5.00"))
        VariantFactory(product=left, price=Decimal("9.00"))
        VariantFactory(product=right, price=Decimal("7.00"))

        ProductVariant.objects.filter(pk=moving.pk).update(product=right)

        assert (min_price(left), min_price(right)) == (Decimal("9.00"), Decimal("5.00"))

    def test_deleting_the_product_deletes_its_variants_without_complaint(self):
        product = VariantFactory().product
        StockLevelFactory(variant=product.variants.get())
        with connection.cursor() as cursor:
            cursor.execute("DELETE FROM catalog_product WHERE id = %s", [product.pk])
        assert not ProductVariant.objects.filter(product_id=product.pk).exists()

    def test_a_stale_whole_row_save_cannot_write_an_old_minimum_back(self):
        variant = VariantFactory(price=Decimal("10.00"))
        product = Product.objects.get(pk=variant.product_id)
        assert product.min_price == Decimal("10.00")
        ProductVariant.objects.filter(pk=variant.pk).update(price=Decimal("14.00"))

        product.name = "Renamed"
        product.save()  # writes every column, min_price 10.00 included

        assert min_price(product) == Decimal("14.00")

    def test_a_direct_write_of_min_price_is_corrected(self):
        variant = VariantFactory(price=Decimal("10.00"))
        Product.objects.filter(pk=variant.product_id).update(min_price=Decimal("1"))
        assert min_price(variant.product) == Decimal("10.00")

    def test_an_update_that_changes_no_price_writes_no_product(self):
        variant = VariantFactory(price=Decimal("10.00"))
        before = Product.objects.values_list("updated_at", flat=True).get(
            pk=variant.product_id
        )
        ProductVariant.objects.filter(pk=variant.pk).update(name="Renamed")
        ProductVariant.objects.filter(pk=variant.pk).update(price=Decimal("10.00"))
        after = Product.objects.values_list("updated_at", flat=True).get(
            pk=variant.product_id
        )
        assert after == before


@pytest.mark.django_db
@pytest.mark.parametrize("seed", [1, 2, 3])
def test_random_sequences_of_variant_writes_never_drift(seed):
    """Single-row and set-based writes, in random order, through ORM and SQL."""
    rng = random.Random(seed)
    category = CategoryFactory()
    products = [ProductFactory(category=category) for _ in range(6)]
    skus = iter(f"RND-{seed}-{n:04d}" for n in range(10_000))

    def price():
        return Decimal(rng.randint(100, 9_999)).scaleb(-2)

    def variants():
        return list(ProductVariant.objects.filter(product__category=category))

    def insert():
        ProductVariant.objects.bulk_create(
            ProductVariant(
                product=rng.choice(products),
                sku=next(skus),
                price=price(),
                is_active=rng.random() < 0.8,
            )
            for _ in range(rng.randint(1, 4))
        )

    def reprice():
        chosen = rng.sample(variants(), k=min(3, len(variants())))
        for variant in chosen:
            ProductVariant.objects.filter(pk=variant.pk).update(price=price())

    def reprice_all():
        # One statement over many products: each is recomputed once.
        with connection.cursor() as cursor:
            cursor.execute(
                "UPDATE catalog_product_variant AS v SET price = v.price * %s "
                "FROM catalog_product AS p "
                "WHERE p.id = v.product_id AND p.category_id = %s",
                [Decimal(rng.choice(["0.9", "1.1"])), category.pk],
            )

    def toggle():
        variant = rng.choice(variants())
        ProductVariant.objects.filter(pk=variant.pk).update(
            is_active=not variant.is_active
        )

    def delete():
        variant = rng.choice(variants())
        with connection.cursor() as cursor:
            cursor.execute(
                "DELETE FROM catalog_product_variant WHERE id = %s", [variant.pk]
            )

    def move():
        variant = rng.choice(variants())
        ProductVariant.objects.filter(pk=variant.pk).update(
            product=rng.choice(products), price=price()
        )

    def rename():
        variant = rng.choice(variants())
        ProductVariant.objects.filter(pk=variant.pk).update(name=f"n{rng.random()}")

    def stale_save():
        product = Product.objects.get(pk=rng.choice(products).pk)
        reprice()
        product.description = f"d{rng.random()}"
        product.save()

    writes = [insert, reprice, reprice_all, toggle, delete, move, rename, stale_save]
    insert()
    for step in range(150):
        write = insert if len(variants()) < 3 else rng.choice(writes)
        write()
        assert drift() == [], f"step {step}: {write.__name__} left drift"
    assert Product.objects.filter(category=category, min_price__isnull=False).exists()


def _price_change(sku, price):
    def change():
        with transaction.atomic():
            ProductVariant.objects.filter(sku=sku).update(price=price)

    return change


@pytest.mark.concurrency
@pytest.mark.django_db(transaction=True, databases=ALL_DATABASES)
def test_concurrent_variant_writes_never_drift():
    """Threads reprice, toggle and move variants of the same few products."""
    products = [ProductFactory() for _ in range(3)]
    variants = [
        VariantFactory(product=products[n % 3], price=Decimal("50.00"))
        for n in range(12)
    ]

    def writer(seed):
        rng = random.Random(seed)

        def run():
            for _ in range(25):
                chosen = rng.sample(variants, k=rng.randint(1, 3))
                ids = [v.pk for v in chosen]
                with transaction.atomic():
                    kind = rng.random()
                    query = ProductVariant.objects.filter(pk__in=ids)
                    # The variants in one order, so that the writers
                    # themselves cannot deadlock on them (chapter 12).
                    list(query.order_by("pk").select_for_update())
                    if kind < 0.6:
                        query.update(price=Decimal(rng.randint(100, 9_999)).scaleb(-2))
                    elif kind < 0.8:
                        query.update(is_active=rng.random() < 0.5)
                    else:
                        query.update(product=rng.choice(products))

        return run

    results, errors = run_concurrently([writer(seed) for seed in range(6)])

    assert errors == [None] * 6, errors
    assert drift() == []


@pytest.mark.concurrency
@pytest.mark.django_db(transaction=True, databases=ALL_DATABASES)
def test_the_second_of_two_concurrent_price_changes_sees_the_first():
    """The race that a minimum computed before waiting for the lock would lose.

    Both transactions reprice a variant of the same product. The first holds
    the product's lock until the second is seen waiting for it; the second
    must then compute the minimum from the first's committed price, not from
    the snapshot it had before it waited (which would put 10.00 back).
    """
    product = ProductFactory()
    first = VariantFactory(product=product, price=Decimal("10.00"))
    second = VariantFactory(product=product, price=Decimal("20.00"))

    errors = second_waits_for_first(
        lambda: ProductVariant.objects.filter(pk=first.pk).update(
            price=Decimal("30.00")
        ),
        lambda: ProductVariant.objects.filter(pk=second.pk).update(
            price=Decimal("25.00")
        ),
    )

    assert errors == [None, None, None], errors
    assert drift() == []
    assert min_price(product) == Decimal("25.00")


@pytest.mark.django_db(transaction=True, databases=ALL_DATABASES)
def test_a_copy_of_variants_fires_the_triggers_as_the_loader():
    """COPY FROM fires statement triggers: the seed's path keeps min_price too.

    As shop_loader, whose grants on catalog_product are SELECT, INSERT and
    UPDATE of min_price alone (catalog/sql/grants/loader_v02.sql).
    """
    product = ProductFactory()
    with connections["loader"].cursor() as cursor:
        with cursor.copy(
            "COPY catalog_product_variant (product_id, sku, name, price, is_active) "
            "FROM STDIN"
        ) as copy:
            copy.write_row((product.pk, "COPY-1", "", Decimal("8.00"), True))
            copy.write_row((product.pk, "COPY-2", "", Decimal("3.00"), False))
            copy.write_row((product.pk, "COPY-3", "", Decimal("6.50"), True))
        cursor.execute(
            "SELECT has_column_privilege('catalog_product', 'min_price', 'UPDATE'), "
            "has_column_privilege('catalog_product', 'name', 'UPDATE')"
        )
        assert cursor.fetchone() == (True, False)
    assert min_price(product) == Decimal("6.50")


@pytest.mark.slow
@pytest.mark.django_db(transaction=True, databases=ALL_DATABASES)
def test_the_seed_leaves_min_price_right_without_rewriting_products():
    """The seed writes each product's minimum; its variants' COPY agrees.

    Were the two to disagree, the triggers would correct the column, by an
    UPDATE that also touches updated_at, which the seed sets in the past.
    """
    started = timezone.now()
    seed_database(plan=plan_for("small", products=300, variants=900))

    assert drift() == []
    assert not Product.objects.filter(updated_at__gte=started).exists()
    assert not Product.objects.filter(min_price__isnull=True).exists()
