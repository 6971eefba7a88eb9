"""The database itself refuses bad rows: raw SQL as shop_app, the ORM bypassed.

Each case is an INSERT or UPDATE that Python validation would normally stop
first; here it reaches PostgreSQL directly, and the named constraint must
reject it. The names are asserted so that a renamed or dropped constraint
fails the suite.
"""

import pytest
from django.db import IntegrityError, connection, transaction
from psycopg import errors

from shop.db_context import customer_transaction
from tests.accounts.factories import CustomerFactory
from tests.catalog.factories import (
    CategoryFactory,
    ProductFactory,
    StockLevelFactory,
    VariantFactory,
)

pytestmark = pytest.mark.django_db


def rejected(sql, params):
    """Run one statement in a savepoint; return the psycopg error it raised."""
    with (
        pytest.raises(IntegrityError) as caught,
        transaction.atomic(),
        connection.cursor() as cursor,
    ):
        # Django declares foreign keys DEFERRABLE INITIALLY DEFERRED, checked
        # at COMMIT; IMMEDIATE makes them fail here, at the statement.
        cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
        cursor.execute(sql, params)
    return caught.value.__cause__


def test_stock_counts_cannot_go_negative_or_reserve_more_than_on_hand():
    level = StockLevelFactory(quantity_on_hand=5, reserved=0)
    cases = {
        "catalog_stock_on_hand_non_negative": "quantity_on_hand = -1",
        "catalog_stock_reserved_non_negative": "reserved = -1",
        "catalog_stock_reserved_within_on_hand": "reserved = 6",
    }
    for constraint, assignment in cases.items():
        error = rejected(
            f"UPDATE catalog_stock_level SET {assignment} WHERE id = %s", [level.pk]
        )
        assert isinstance(error, errors.CheckViolation)
        assert error.diag.constraint_name == constraint


def test_a_variant_needs_a_well_formed_unique_sku_and_a_non_negative_price():
    variant = VariantFactory(sku="LAMP-1")
    insert = (
        "INSERT INTO catalog_product_variant (product_id, sku, name, price, is_active) "
        "VALUES (%s, %s, '', %s, true)"
    )
    product = variant.product_id
    cases = [
        (["LAMP-1", "1.00"], errors.UniqueViolation, "catalog_variant_sku_uniq"),
        (["lamp-2", "1.00"], errors.CheckViolation, "catalog_variant_sku_format"),
        (
            ["LAMP-3", "-0.01"],
            errors.CheckViolation,
            "catalog_variant_price_non_negative",
        ),
    ]
    for (sku, price), error_class, constraint in cases:
        error = rejected(insert, [product, sku, price])
        assert isinstance(error, error_class), error
        assert error.diag.constraint_name == constraint


def test_prices_are_exact_numeric_with_two_decimals():
    variant = VariantFactory()
    with connection.cursor() as cursor:
        cursor.execute(
            "UPDATE catalog_product_variant SET price = 0.1 + 0.2 WHERE id = %s "
            "RETURNING price, pg_typeof(price)::text",
            [variant.pk],
        )
        price, type_name = cursor.fetchone()
    assert str(price) == "0.30"
    assert type_name == "numeric"


def test_a_review_rating_is_1_to_5_and_one_per_customer_and_product():
    product = ProductFactory()
    customer = CustomerFactory()
    insert = (
        "INSERT INTO catalog_review (product_id, customer_id, rating, title, body, "
        "created_at) VALUES (%s, %s, %s, '', '', now())"
    )
    # As the author: row-level security lets only them write their review.
    with customer_transaction(customer.pk):
        for rating in (0, 6):
            error = rejected(insert, [product.pk, customer.pk, rating])
            assert error.diag.constraint_name == "catalog_review_rating_1_to_5"
        with connection.cursor() as cursor:
            cursor.execute(insert, [product.pk, customer.pk, 5])
        error = rejected(insert, [product.pk, customer.pk, 4])
        assert error.diag.constraint_name == "catalog_review_one_per_customer_product"


def test_the_category_tree_refuses_self_parents_and_sibling_name_clashes():
    parent = CategoryFactory(name="Home")
    child = CategoryFactory(name="Lamps", parent=parent)
    # An INSERT naming its own id as parent: the CHECK refuses. (An UPDATE
    # would meet the cycle trigger first, which runs before CHECKs.)
    error = rejected(
        "INSERT INTO catalog_category (id, name, slug, parent_id) "
        "VALUES (%s, 'Self', 'self', %s)",
        [10**9, 10**9],
    )
    assert error.diag.constraint_name == "catalog_category_not_own_parent"
    error = rejected(
        "UPDATE catalog_category SET parent_id = id WHERE id = %s", [child.pk]
    )
    assert error.diag.constraint_name == "catalog_category_no_cycle"
    error = rejected(
        "INSERT INTO catalog_category (name, slug, parent_id) "
        "VALUES ('Lamps', 'lamps-2', %s)",
        [parent.pk],
    )
    assert error.diag.constraint_name == "catalog_category_sibling_name_uniq"
    # NULLS NOT DISTINCT: two roots with one name clash too.
    error = rejected(
        "INSERT INTO catalog_category (name, slug, parent_id) "
        "VALUES ('Home', 'home-2', NULL)",
        [],
    )
    assert error.diag.constraint_name == "catalog_category_sibling_name_uniq"


def test_foreign_keys_protect_what_they_point_at():
    product = ProductFactory()
    error = rejected(
        "DELETE FROM catalog_category WHERE id = %s", [product.category_id]
    )
    assert isinstance(error, errors.ForeignKeyViolation)
    error = rejected(
        "INSERT INTO catalog_product (category_id, name, slug, description, is_active, "
        "created_at, updated_at) VALUES (%s, 'Ghost', 'ghost', '', true, now(), now())",
        [10**9],
    )
    assert isinstance(error, errors.ForeignKeyViolation)


def test_deleting_a_product_in_raw_sql_cascades_to_variants_and_stock():
    level = StockLevelFactory()
    product_id = level.variant.product_id
    with connection.cursor() as cursor:
        cursor.execute("DELETE FROM catalog_product WHERE id = %s", [product_id])
        cursor.execute(
            "SELECT count(*) FROM catalog_stock_level WHERE id = %s", [level.pk]
        )
        assert cursor.fetchone() == (0,)


def test_a_users_email_is_stored_lower_case_and_unique():
    customer = CustomerFactory()
    error = rejected(
        "UPDATE accounts_user SET email = upper(email) WHERE id = %s",
        [customer.user_id],
    )
    assert error.diag.constraint_name == "accounts_user_email_lowercase"


def test_an_address_has_an_iso_country_and_one_default_per_customer():
    customer = CustomerFactory()
    insert = (
        "INSERT INTO accounts_address (customer_id, line1, line2, city, postal_code, "
        "country, is_default) VALUES (%s, '1 Main St', '', 'Town', '1', %s, %s)"
    )
    with customer_transaction(customer.pk):  # only they may write their addresses
        error = rejected(insert, [customer.pk, "us", False])
        assert error.diag.constraint_name == "accounts_address_country_iso2"
        with connection.cursor() as cursor:
            cursor.execute(insert, [customer.pk, "US", True])
        error = rejected(insert, [customer.pk, "DE", True])
        assert error.diag.constraint_name == "accounts_address_one_default_per_customer"


def test_only_one_warehouse_is_the_default():
    insert = (
        "INSERT INTO catalog_warehouse (code, name, is_default) VALUES (%s, %s, true)"
    )
    with connection.cursor() as cursor:
        cursor.execute(insert, ["MAIN", "Main"])
    error = rejected(insert, ["EAST", "East"])
    assert error.diag.constraint_name == "catalog_warehouse_one_default"


def test_the_search_document_is_generated_by_the_database():
    product = ProductFactory(name="Walnut Bookshelf", description="Holds many books")
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT search_document @@ websearch_to_tsquery('english', 'book') "
            "FROM catalog_product WHERE id = %s",
            [product.pk],
        )
        assert cursor.fetchone() == (True,)
    error_sql = "UPDATE catalog_product SET search_document = NULL WHERE id = %s"
    with (
        pytest.raises(Exception) as caught,
        transaction.atomic(),
        connection.cursor() as cursor,
    ):
        cursor.execute(error_sql, [product.pk])
    assert "generated column" in str(caught.value)


def test_slugs_are_lower_case_words_and_dashes():
    product = ProductFactory()
    for bad in ["", "Has Space", "UPPER", "-leading", "trailing-", "a--b"]:
        error = rejected(
            "UPDATE catalog_product SET slug = %s WHERE id = %s", [bad, product.pk]
        )
        assert error.diag.constraint_name == "catalog_product_slug_format", bad


def test_a_category_cannot_move_under_its_own_descendant():
    root = CategoryFactory(name="Root")
    child = CategoryFactory(name="Child", parent=root)
    grandchild = CategoryFactory(name="Grandchild", parent=child)
    error = rejected(
        "UPDATE catalog_category SET parent_id = %s WHERE id = %s",
        [grandchild.pk, root.pk],
    )
    assert isinstance(error, errors.CheckViolation)
    assert error.diag.constraint_name == "catalog_category_no_cycle"
    # Moving within the tree is fine.
    with connection.cursor() as cursor:
        cursor.execute(
            "UPDATE catalog_category SET parent_id = %s WHERE id = %s",
            [root.pk, grandchild.pk],
        )
