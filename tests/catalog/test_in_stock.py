"""catalog_product.in_stock never drifts from the stock and the variants.

The triggers of catalog/sql/triggers/product_in_stock_v01.sql keep it;
catalog/sql/queries/product_in_stock_drift_v01.sql recomputes it and lists
every product where the two disagree. Each test writes stock or variants
some way (the ORM, raw SQL, COPY, checkout, concurrent transactions) and
then asks that query, which must come back empty.
"""

import random

import pytest
from django.db import connection, connections, transaction
from django.utils import timezone

from catalog.models import Product, ProductVariant, StockLevel
from shop.seeding import plan_for, seed_database
from shop.sql_files import read_sql
from tests.catalog.factories import (
    CategoryFactory,
    ProductFactory,
    StockLevelFactory,
    VariantFactory,
    WarehouseFactory,
)
from tests.concurrency import second_waits_for_first
from tests.dbs import ALL_DATABASES

DRIFT_SQL = "catalog/sql/queries/product_in_stock_drift_v01.sql"


def drift():
    with connections["default"].cursor() as cursor:
        cursor.execute(read_sql(DRIFT_SQL))
        return cursor.fetchall()


def in_stock(product):
    return Product.objects.values_list("in_stock", flat=True).get(pk=product.pk)


def level(product, on_hand, reserved=0, **kwargs):
    return StockLevelFactory(
        variant=VariantFactory(product=product),
        quantity_on_hand=on_hand,
        reserved=reserved,
        **kwargs,
    )


@pytest.mark.django_db
class TestEachKindOfWrite:
    def test_a_new_product_is_out_of_stock_until_a_unit_arrives(self):
        product = ProductFactory()
        assert in_stock(product) is False
        VariantFactory(product=product)
        assert in_stock(product) is False
        level(product, on_hand=0)
        assert in_stock(product) is False
        level(product, on_hand=2)
        assert in_stock(product) is True
        assert drift() == []

    def test_reserving_and_selling_the_last_unit_and_restocking(self):
        product = ProductFactory()
        row = level(product, on_hand=2)
        rows = StockLevel.objects.filter(pk=row.pk)
        rows.update(reserved=1)
        assert in_stock(product) is True
        rows.update(reserved=2)  # every unit promised: none available
        assert in_stock(product) is False
        rows.update(reserved=1)  # a reservation released
        assert in_stock(product) is True
        with connection.cursor() as cursor:  # sold, as checkout's SQL does
            cursor.execute(
                "UPDATE catalog_stock_level SET quantity_on_hand = 0, reserved = 0 "
                "WHERE id = %s",
                [row.pk],
            )
        assert in_stock(product) is False
        rows.update(quantity_on_hand=5)
        assert in_stock(product) is True
        assert drift() == []

    def test_another_warehouse_or_variant_keeps_the_product_in_stock(self):
        product = ProductFactory()
        first = level(product, on_hand=1)
        level(
            product,
            on_hand=1,
            warehouse=WarehouseFactory(code="EAST", name="East", is_default=False),
        )
        StockLevel.objects.filter(pk=first.pk).update(quantity_on_hand=0)
        assert in_stock(product) is True
        assert drift() == []

    def test_variant_activation_deletion_and_moves_follow(self):
        product, other = ProductFactory(), ProductFactory()
        row = level(product, on_hand=3)
        variants = ProductVariant.objects.filter(pk=row.variant_id)
        variants.update(is_active=False)
        assert in_stock(product) is False
        variants.update(is_active=True)
        assert in_stock(product) is True
        variants.update(product=other)
        assert (in_stock(product), in_stock(other)) == (False, True)
        variants.delete()
        assert in_stock(other) is False
        assert drift() == []

    def test_deleting_a_stock_row_follows(self):
        product = ProductFactory()
        row = level(product, on_hand=3)
        StockLevel.objects.filter(pk=row.pk).delete()
        assert in_stock(product) is False
        assert drift() == []

    def test_stock_inserted_before_its_variant_in_one_transaction(self):
        """The foreign keys are checked at COMMIT: the variant can come second."""
        product = ProductFactory()
        warehouse = WarehouseFactory()
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute(
                "SELECT nextval(pg_get_serial_sequence(%s, 'id'))",
                ["catalog_product_variant"],
            )
            (variant_id,) = cursor.fetchone()
            cursor.execute(
                "INSERT INTO catalog_stock_level (variant_id, warehouse_id, "
                "quantity_on_hand, reserved, updated_at) VALUES (%s, %s, 4, 0, now())",
                [variant_id, warehouse.pk],
            )
            cursor.execute(
                "INSERT INTO catalog_product_variant (id, product_id, sku, name, "
                "price, is_active) VALUES (%s, %s, 'EARLY-1', '', 5, true)",
                [variant_id, product.pk],
            )
        assert in_stock(product) is True
        assert drift() == []

    def test_a_stale_whole_row_save_cannot_write_an_old_flag_back(self):
        product = ProductFactory()
        row = level(product, on_hand=1)
        stale = Product.objects.get(pk=product.pk)
        assert stale.in_stock is True
        StockLevel.objects.filter(pk=row.pk).update(quantity_on_hand=0)
        stale.description = "Saved whole, with the flag it read."
        stale.save()
        assert in_stock(product) is False
        assert drift() == []

    def test_a_direct_write_of_the_flag_is_corrected(self):
        product = ProductFactory()
        Product.objects.filter(pk=product.pk).update(in_stock=True)
        assert in_stock(product) is False

    def test_a_change_that_crosses_no_zero_writes_no_product(self):
        product = ProductFactory()
        row = level(product, on_hand=5)
        before = Product.objects.values_list("updated_at", flat=True).get(pk=product.pk)
        StockLevel.objects.filter(pk=row.pk).update(reserved=3)
        StockLevel.objects.filter(pk=row.pk).update(quantity_on_hand=4, reserved=1)
        after = Product.objects.values_list("updated_at", flat=True).get(pk=product.pk)
        assert after == before

    def test_the_list_filter_reads_the_column(self, api_client):
        sold_out, stocked = ProductFactory(), ProductFactory()
        level(sold_out, on_hand=2, reserved=2)
        level(stocked, on_hand=2)
        for flag, expected in (("false", sold_out), ("true", stocked)):
            body = api_client.get(f"/api/v1/products/?in_stock={flag}").json()
            assert [p["slug"] for p in body["results"]] == [expected.slug]
            assert body["results"][0]["in_stock"] is (flag == "true")


@pytest.mark.django_db
@pytest.mark.parametrize("seed", [1, 2, 3])
def test_random_sequences_of_stock_and_variant_writes_never_drift(seed):
    """Single-row and set-based writes, in random order, through ORM and SQL."""
    rng = random.Random(seed)
    category = CategoryFactory()
    products = [ProductFactory(category=category) for _ in range(5)]
    east = WarehouseFactory(code="EAST", name="East", is_default=False)
    warehouses = [WarehouseFactory(), east]
    variants = [VariantFactory(product=rng.choice(products)) for _ in range(8)]

    def rows():
        # In a fixed order, so that a seed is one walk: unordered, the row
        # rng.choice() picked depended on where the rows lay in the table.
        return list(
            StockLevel.objects.filter(variant__product__category=category).order_by(
                "pk"
            )
        )

    def insert():
        variant, warehouse = rng.choice(variants), rng.choice(warehouses)
        if not StockLevel.objects.filter(variant=variant, warehouse=warehouse).exists():
            on_hand = rng.randint(0, 2)
            StockLevelFactory(
                variant=variant,
                warehouse=warehouse,
                quantity_on_hand=on_hand,
                reserved=rng.randint(0, on_hand),
            )

    def reserve_or_release():
        row = rng.choice(rows())
        StockLevel.objects.filter(pk=row.pk).update(
            reserved=rng.randint(0, row.quantity_on_hand)
        )

    def sell_everything_in_a_warehouse():
        with connection.cursor() as cursor:
            cursor.execute(
                "UPDATE catalog_stock_level SET quantity_on_hand = reserved "
                "WHERE warehouse_id = %s",
                [rng.choice(warehouses).pk],
            )

    def restock():
        row = rng.choice(rows())
        StockLevel.objects.filter(pk=row.pk).update(
            quantity_on_hand=row.quantity_on_hand + rng.randint(0, 2)
        )

    def delete():
        StockLevel.objects.filter(pk=rng.choice(rows()).pk).delete()

    def toggle():
        variant = rng.choice(variants)
        ProductVariant.objects.filter(pk=variant.pk).update(
            is_active=rng.random() < 0.6
        )

    def move():
        ProductVariant.objects.filter(pk=rng.choice(variants).pk).update(
            product=rng.choice(products)
        )

    writes = [reserve_or_release, sell_everything_in_a_warehouse, restock]
    writes += [delete, toggle, move, insert, insert]
    flags_seen = set()
    for step in range(150):
        write = insert if len(rows()) < 3 else rng.choice(writes)
        write()
        assert drift() == [], f"step {step}: {write.__name__} left drift"
        flags_seen.update(
            Product.objects.filter(category=category).values_list("in_stock", flat=True)
        )
    # The walk took products both ways, so the triggers were asked to set the
    # flag and to clear it (where it ends is the dice's business).
    assert flags_seen == {True, False}


@pytest.mark.concurrency
@pytest.mark.django_db(transaction=True, databases=ALL_DATABASES)
def test_two_last_units_of_one_product_sold_at_once_leave_it_sold_out():
    """The write skew the product's lock prevents.

    Two variants of one product, one unit each, and two transactions that
    each sell one. The first holds its sale uncommitted until the second is
    seen waiting for a lock, or is done. Without the lock, the second's
    trigger would compute from a snapshot in which the first's unit is still
    there, the first's from one in which the second's is: both would leave
    the product in stock with nothing to sell. With it, the second waits
    for the first's commit and computes from what the first left.
    """
    product = ProductFactory()
    rows = [level(product, on_hand=1) for _ in range(2)]

    def sell(row):
        return lambda: StockLevel.objects.filter(pk=row.pk).update(quantity_on_hand=0)

    errors = second_waits_for_first(sell(rows[0]), sell(rows[1]))

    assert errors == [None, None, None], errors
    assert in_stock(product) is False
    assert drift() == []


@pytest.mark.django_db(transaction=True, databases=ALL_DATABASES)
def test_a_copy_of_stock_fires_the_triggers_as_the_loader():
    """As shop_loader, whose only UPDATE on catalog_product is two columns."""
    product = ProductFactory()
    variant = VariantFactory(product=product)
    warehouse = WarehouseFactory()
    with connections["loader"].cursor() as cursor:
        with cursor.copy(
            "COPY catalog_stock_level (variant_id, warehouse_id, quantity_on_hand, "
            "reserved, updated_at) FROM STDIN"
        ) as copy:
            copy.write_row((variant.pk, warehouse.pk, 3, 1, timezone.now()))
        cursor.execute(
            "SELECT has_column_privilege('catalog_product', 'in_stock', 'UPDATE'), "
            "has_column_privilege('catalog_product', 'name', 'UPDATE')"
        )
        assert cursor.fetchone() == (True, False)
    assert in_stock(product) is True
    assert drift() == []


@pytest.mark.slow
@pytest.mark.django_db(transaction=True, databases=ALL_DATABASES)
def test_the_seed_writes_each_flag_right_and_rewrites_no_product():
    started = timezone.now()
    seed_database(plan=plan_for("small", products=300, variants=900))

    assert drift() == []
    assert not Product.objects.filter(updated_at__gte=started).exists()
    assert Product.objects.filter(in_stock=False).exists()
    assert Product.objects.filter(in_stock=True).exists()
