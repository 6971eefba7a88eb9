"""Lab `constraints` (02): raw SQL as shop_app, each bad row refused by a
named CHECK, UNIQUE or FOREIGN KEY constraint.
"""

from decimal import Decimal

from django.db import transaction

from catalog.labs.rows import catalog_rows
from shop.accounts.labs import lab_customers
from shop.lab import Narrator, lab, rolled_back

STOCK_INSERT = """
INSERT INTO catalog_stock_level
    (variant_id, warehouse_id, quantity_on_hand, reserved, updated_at)
VALUES (%s, %s, %s, %s, now())
"""

VARIANT_INSERT = """
INSERT INTO catalog_product_variant (product_id, sku, name, price, is_active)
VALUES (%s, %s, '', %s, true)
"""

PRODUCT_INSERT = """
INSERT INTO catalog_product
    (category_id, name, slug, description, is_active, created_at, updated_at)
VALUES (%s, %s, %s, '', true, now(), now())
"""

REVIEW_INSERT = """
INSERT INTO catalog_review (product_id, customer_id, rating, title, body, created_at)
VALUES (%s, %s, %s, '', '', now())
"""

FOREIGN_KEYS_SQL = """
SELECT conname AS constraint_name,
       conrelid::regclass AS child,
       confrelid::regclass AS parent,
       CASE confdeltype WHEN 'c' THEN 'CASCADE' WHEN 'r' THEN 'RESTRICT'
            WHEN 'n' THEN 'SET NULL' WHEN 'a' THEN 'NO ACTION' END AS on_delete,
       condeferred AS deferred
FROM pg_constraint
WHERE contype = 'f' AND conrelid = ANY(%s::regclass[])
ORDER BY conrelid::regclass::text, conname
"""


@lab(
    "constraints",
    chapter="02",
    summary="Raw SQL as shop_app: each bad row is refused by a named constraint",
)
def constraints(n: Narrator) -> None:
    n.say(
        "Every rule below lives in the database. The statements are raw SQL sent\n"
        "as the app's own role: no model validation, no serializer, nothing in\n"
        "Python stands between them and the tables."
    )
    n.step("Who is asking")
    rows = n.sql(
        "SELECT current_user, rolsuper, rolbypassrls "
        "FROM pg_roles WHERE rolname = current_user"
    )
    n.expect(
        rows[0][1] is False and rows[0][2] is False,
        "the app's role is neither superuser nor BYPASSRLS: it gets no special "
        "treatment",
    )

    n.step("The rules on catalog_stock_level, as the database holds them")
    n.sql(
        "SELECT conname, pg_get_constraintdef(oid) AS definition "
        "FROM pg_constraint WHERE conrelid = %s::regclass ORDER BY conname",
        ["catalog_stock_level"],
    )

    with rolled_back("default"):
        n.say("\n    BEGIN")
        # No stock row yet: the steps below insert their own.
        (ids,) = catalog_rows(
            n, "02", on_hand=None, label="setup, inside the transaction"
        )
        variant, warehouse = ids.variant_id, ids.warehouse_id
        product, category = ids.product_id, ids.category_id

        n.step("CHECK: stock on hand is never negative")
        n.expect_sql_error(
            STOCK_INSERT,
            [variant, warehouse, -1, 0],
            sqlstate="23514",
            constraint="catalog_stock_on_hand_non_negative",
            claim="quantity_on_hand = -1 is refused (23514 check_violation)",
        )

        n.step("CHECK across two columns: reserved never exceeds on hand")
        n.expect_sql_error(
            STOCK_INSERT,
            [variant, warehouse, 2, 3],
            sqlstate="23514",
            constraint="catalog_stock_reserved_within_on_hand",
            claim="reserving 3 of 2 units is refused: the last line against "
            "overselling",
        )
        n.sql(STOCK_INSERT, [variant, warehouse, 5, 1], label="a valid row passes")

        n.step("CHECK: a rating is 1 to 5; UNIQUE: one review per customer")
        customer = lab_customers(n, "02")[0].customer_id
        n.act_as_customer(customer)  # only the author may write a review
        n.expect_sql_error(
            REVIEW_INSERT,
            [product, customer, 6],
            sqlstate="23514",
            constraint="catalog_review_rating_1_to_5",
            claim="rating 6 is refused",
        )
        n.sql(REVIEW_INSERT, [product, customer, 5], label="rating 5 passes")
        n.expect_sql_error(
            REVIEW_INSERT,
            [product, customer, 4],
            sqlstate="23505",
            constraint="catalog_review_one_per_customer_product",
            claim="a second review by the same customer is refused "
            "(23505 unique_violation)",
        )

        n.step("UNIQUE and a format CHECK on the SKU")
        n.expect_sql_error(
            VARIANT_INSERT,
            [product, ids.sku, Decimal("9.90")],
            sqlstate="23505",
            constraint="catalog_variant_sku_uniq",
            claim=f"a second variant with SKU {ids.sku} is refused",
        )
        n.expect_sql_error(
            VARIANT_INSERT,
            [product, ids.sku.lower(), Decimal("9.90")],
            sqlstate="23514",
            constraint="catalog_variant_sku_format",
            claim="a lower-case SKU is refused by the regular-expression CHECK",
        )

        n.step("FOREIGN KEY: a product needs a category that exists")
        n.say(
            "The ON DELETE rules are the database's own (shop/migration_ops.py);\n"
            "Django declares every key DEFERRABLE INITIALLY DEFERRED."
        )
        keys = n.sql(
            FOREIGN_KEYS_SQL,
            [["catalog_product", "catalog_product_variant", "catalog_stock_level"]],
        )
        category_key = next(
            name for name, child, *_ in keys if str(child) == "catalog_product"
        )
        gone = n.sql(
            "INSERT INTO catalog_category (name, slug) VALUES (%s, %s) RETURNING id",
            ["Lab 02 gone", "lab-02-gone"],
            label="a category that is about to disappear",
        )[0][0]
        n.sql("DELETE FROM catalog_category WHERE id = %s", [gone])

        def product_in_missing_category():
            with transaction.atomic(using="default"):
                n.sql(PRODUCT_INSERT, [gone, "Lab 02 orphan", "lab-02-orphan"])
                n.say(
                    "    (accepted for now: a deferred key is checked at COMMIT;\n"
                    "     SET CONSTRAINTS ... IMMEDIATE runs that check right away)"
                )
                n.sql("SET CONSTRAINTS ALL IMMEDIATE")

        n.expect_error(
            product_in_missing_category,
            sqlstate="23503",
            constraint=category_key,
            claim="a product in a missing category is refused "
            "(23503 foreign_key_violation)",
        )

        n.step("ON DELETE RESTRICT: a category that has products cannot be deleted")
        n.expect_sql_error(
            "DELETE FROM catalog_category WHERE id = %s",
            [category],
            sqlstate="23503",
            constraint=category_key,
            claim="deleting the category is refused at once (RESTRICT is never "
            "deferred)",
        )

        n.step("ON DELETE CASCADE in the database: a raw DELETE takes the parts along")
        count_parts = """
            SELECT
              (SELECT count(*) FROM catalog_product_variant
                WHERE product_id = %(product)s) AS variants,
              (SELECT count(*) FROM catalog_stock_level
                WHERE variant_id = %(variant)s) AS stock_levels,
              (SELECT count(*) FROM catalog_review
                WHERE product_id = %(product)s) AS reviews
        """
        parts = {"product": product, "variant": variant}
        before = n.sql(count_parts, parts)
        n.expect(before == [(1, 1, 1)], "the product has a variant, stock and a review")
        n.sql("DELETE FROM catalog_product WHERE id = %s", [product])
        after = n.sql(count_parts, parts)
        n.expect(
            after == [(0, 0, 0)],
            "one DELETE of the product removed its variant, stock level and "
            "review: the database cascaded, not Django",
        )
        n.say("\n    ROLLBACK")
