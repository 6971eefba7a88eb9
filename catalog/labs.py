"""The catalog's labs: constraints (02), normalization (03), selectors (05), ORM (17).

Every lab works inside one transaction on `default` (the app's role,
shop_app) that it rolls back, so it runs the same on an empty database and
on a seeded one and leaves nothing behind.
"""

from decimal import Decimal

import sqlparse
from django.db import connections, transaction
from django.db.models import Count, Min, Q
from django.test.utils import CaptureQueriesContext

from catalog import selectors
from catalog.models import Category, Product, ProductVariant, StockLevel, Warehouse
from shop.lab import Narrator, lab, rolled_back
from shop.sql_files import read_sql

# One row in each catalog table, in one statement: data-modifying CTEs see
# each other's RETURNING rows, so the ids never travel through Python.
CATALOG_ROWS_SQL = """
WITH category AS (
    INSERT INTO catalog_category (name, slug)
    VALUES (%(category)s, %(category_slug)s)
    RETURNING id
), product AS (
    INSERT INTO catalog_product
        (category_id, name, slug, description, is_active, created_at, updated_at)
    SELECT id, %(product)s, %(product_slug)s, '', true, now(), now() FROM category
    RETURNING id
), variant AS (
    INSERT INTO catalog_product_variant (product_id, sku, name, price, is_active)
    SELECT id, %(sku)s, '', %(price)s, true FROM product
    RETURNING id
), warehouse AS (
    INSERT INTO catalog_warehouse (code, name, is_default)
    VALUES (%(warehouse)s, %(warehouse)s, false)
    RETURNING id
)
SELECT category.id AS category_id, product.id AS product_id,
       variant.id AS variant_id, warehouse.id AS warehouse_id
FROM category, product, variant, warehouse
"""

CUSTOMER_SQL = """
WITH new_user AS (
    INSERT INTO accounts_user
        (password, is_superuser, email, is_active, is_staff, date_joined)
    VALUES ('!', false, %(email)s, true, false, now())
    RETURNING id
)
INSERT INTO accounts_customer (user_id, phone, created_at)
SELECT id, '', now() FROM new_user
RETURNING id AS customer_id
"""

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


def catalog_rows(narrator: Narrator, *, tag: str, using: str = "default") -> dict:
    """Insert a category, product, variant and warehouse named after `tag`.

    Call inside a transaction that is rolled back; returns the new ids.
    """
    params = {
        "category": f"Lab {tag} category",
        "category_slug": f"lab-{tag}-category",
        "product": f"Lab {tag} product",
        "product_slug": f"lab-{tag}-product",
        "sku": f"LAB-{tag.upper()}-1",
        "price": Decimal("19.90"),
        "warehouse": f"LAB-{tag.upper()}",
    }
    rows = narrator.sql(
        CATALOG_ROWS_SQL, params, using=using, label="setup, inside the transaction"
    )
    columns = ("category_id", "product_id", "variant_id", "warehouse_id")
    ids = dict(zip(columns, rows[0], strict=True))
    return {**ids, "sku": params["sku"]}


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
        ids = catalog_rows(n, tag="02")
        variant, warehouse = ids["variant_id"], ids["warehouse_id"]
        product, category = ids["product_id"], ids["category_id"]

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
        customer = n.sql(CUSTOMER_SQL, {"email": "lab-02@example.com"})[0][0]
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
            [product, ids["sku"], Decimal("9.90")],
            sqlstate="23505",
            constraint="catalog_variant_sku_uniq",
            claim=f"a second variant with SKU {ids['sku']} is refused",
        )
        n.expect_sql_error(
            VARIANT_INSERT,
            [product, ids["sku"].lower(), Decimal("9.90")],
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


@lab(
    "update-anomaly",
    chapter="03",
    summary="Copied names drift apart after one rename; the normalized join cannot",
)
def update_anomaly(n: Narrator) -> None:
    with rolled_back("default"):
        n.say("    BEGIN")
        ids = catalog_rows(n, tag="03")
        product, category = ids["product_id"], ids["category_id"]

        n.step(
            "A denormalized table: each order line copies product and category names"
        )
        n.sql(
            """
            CREATE TEMP TABLE lab_order_line_flat (
                order_no integer PRIMARY KEY,
                product_id bigint NOT NULL,
                product_name text NOT NULL,
                category_name text NOT NULL,
                quantity integer NOT NULL
            )
            """,
            label="a TEMP table, private to this session, gone at ROLLBACK",
        )
        n.sql(
            """
            INSERT INTO lab_order_line_flat
                (order_no, product_id, product_name, category_name, quantity)
            SELECT g, p.id, p.name, c.name, 1
            FROM catalog_product AS p
            JOIN catalog_category AS c ON c.id = p.category_id
            CROSS JOIN generate_series(1, %s) AS g
            WHERE p.id = %s
            """,
            [3, product],
        )

        n.step("Rename the category, in its one place")
        n.sql(
            "UPDATE catalog_category SET name = %s WHERE id = %s",
            ["Lab 03 running shoes", category],
        )
        joined = n.sql(
            """
            SELECT p.name AS product, c.name AS category
            FROM catalog_product AS p
            JOIN catalog_category AS c ON c.id = p.category_id
            WHERE p.id = %s
            """,
            [product],
            label="normalized: the join reads the one source of truth",
        )
        n.expect(
            joined[0][1] == "Lab 03 running shoes",
            "the normalized read shows the new name at once",
        )
        stale = n.sql(
            """
            SELECT f.order_no, f.category_name AS copied, c.name AS current
            FROM lab_order_line_flat AS f
            JOIN catalog_product AS p ON p.id = f.product_id
            JOIN catalog_category AS c ON c.id = p.category_id
            WHERE f.category_name <> c.name
            ORDER BY f.order_no
            """,
            label="denormalized: the copies that now disagree",
        )
        n.expect(
            len(stale) == 3,
            "all 3 copies still carry the old name: an update anomaly",
        )

        n.step("Fix the copies by hand, and miss some (as a hurried script would)")
        n.sql(
            "UPDATE lab_order_line_flat SET category_name = %s WHERE order_no = %s",
            ["Lab 03 running shoes", 1],
        )
        names = n.sql(
            """
            SELECT product_id, count(DISTINCT category_name) AS category_names,
                   string_agg(DISTINCT category_name, ' | ') AS which
            FROM lab_order_line_flat
            GROUP BY product_id
            """
        )
        n.expect(
            names[0][1] == 2,
            "one product now sits in two categories at once: the flat table "
            "contradicts itself",
        )
        n.say(
            "Normalization stores each fact once (the category's name in\n"
            "catalog_category), so a change is one UPDATE and there is nothing to\n"
            "forget."
        )

        n.step("The deliberate exception: an order's shipping-address snapshot")
        customer = n.sql(CUSTOMER_SQL, {"email": "lab-03@example.com"})[0][0]
        address = n.sql(
            """
            INSERT INTO accounts_address
                (customer_id, line1, line2, city, postal_code, country, is_default)
            VALUES (%s, %s, '', %s, %s, %s, true)
            RETURNING id
            """,
            [customer, "1 Old Street", "Leeds", "LS1 1AA", "GB"],
        )[0][0]
        n.sql(
            """
            CREATE TEMP TABLE lab_order (
                order_no integer PRIMARY KEY,
                customer_id bigint NOT NULL,
                ship_line1 text NOT NULL,
                ship_city text NOT NULL,
                ship_postal_code text NOT NULL,
                ship_country char(2) NOT NULL
            )
            """,
            label="orders copy the address at checkout (a TEMP stand-in here)",
        )
        n.sql(
            """
            INSERT INTO lab_order
            SELECT 1, customer_id, line1, city, postal_code, country
            FROM accounts_address WHERE id = %s
            """,
            [address],
        )
        n.sql(
            "UPDATE accounts_address SET line1 = %s, city = %s, postal_code = %s "
            "WHERE id = %s",
            ["9 New Road", "York", "YO1 7HH", address],
            label="later, the customer moves",
        )
        moved = n.sql(
            """
            SELECT o.order_no, o.ship_city AS shipped_to, a.city AS lives_now
            FROM lab_order AS o
            JOIN accounts_address AS a ON a.customer_id = o.customer_id
            """
        )
        n.expect(
            moved == [(1, "Leeds", "York")],
            "the order still says where the parcel went; only the address book changed",
        )
        n.say(
            "The snapshot is not a copy that must follow changes: it records a fact\n"
            "about the moment of checkout, as the order line's unit price does. An\n"
            "address_id join would rewrite history (the order would claim it went to\n"
            "York) and would break when the customer deletes the address. Nothing\n"
            "ever updates a snapshot, so there is no anomaly to fear."
        )
        n.say("\n    ROLLBACK")


def _lamps(category: Category, warehouse: Warehouse) -> None:
    """Products with one variant each, priced and stocked to exercise each filter."""
    lamps = [
        # name, price, units available
        ("Night light", "9.00", 10),  # below min_price
        ("Reading lamp", "15.50", 3),
        ("Desk lamp", "24.00", 5),
        ("Wall lamp", "35.00", 4),  # cut by LIMIT
        ("Floor lamp", "89.00", 0),  # out of stock
        ("Chandelier", "450.00", 2),  # above max_price
    ]
    for position, (name, price, units) in enumerate(lamps, start=1):
        product = Product.objects.create(
            category=category, name=f"Lab {name}", slug=f"lab-05-lamp-{position}"
        )
        variant = ProductVariant.objects.create(
            product=product, sku=f"LAB-05-{position}", price=Decimal(price)
        )
        StockLevel.objects.create(
            variant=variant, warehouse=warehouse, quantity_on_hand=units
        )


@lab(
    "selector-sql",
    chapter="05",
    summary="The SQL catalog.selectors.product_list runs: WHERE, ORDER BY, LIMIT",
)
def selector_sql(n: Narrator) -> None:
    connection = connections["default"]
    with rolled_back("default"):
        category = Category.objects.create(name="Lab 05 lamps", slug="lab-05-lamps")
        warehouse = Warehouse.objects.create(code="LAB-05", name="Lab 05")
        _lamps(category, warehouse)
        n.say("setup (ORM, inside the transaction): six lamps in 'lab-05-lamps':")
        n.table(
            ["product", "price", "on_hand"],
            list(
                StockLevel.objects.filter(warehouse=warehouse)
                .order_by("variant__price")
                .values_list(
                    "variant__product__name", "variant__price", "quantity_on_hand"
                )
            ),
        )

        n.step("The call, as the API's product list makes it")
        n.say(
            '    selectors.product_list(category="lab-05-lamps", min_price=10,\n'
            '        max_price=100, in_stock=True, ordering="price")[:2]'
        )
        queryset = selectors.product_list(
            category="lab-05-lamps",
            min_price=Decimal("10"),
            max_price=Decimal("100"),
            in_stock=True,
            ordering="price",
        )[:2]
        sql, params = queryset.query.sql_with_params()
        n.show_sql(
            sqlparse.format(sql, reindent=True),
            params,
            label="the SQL, with its parameters kept apart (re-indented to read)",
        )

        with CaptureQueriesContext(connection) as captured:
            products = list(queryset)
        executed = captured.captured_queries[-1]["sql"]
        n.say(f"\n    ran {len(captured)} query in {captured[-1]['time']} s")
        n.expect(len(captured) == 1, "one query for the whole page: no N+1")
        n.expect(
            " WHERE " in executed,
            "the filters are a WHERE clause: the database drops rows, not Python",
        )
        n.expect(
            " ORDER BY " in executed and executed.rstrip().endswith("LIMIT 2"),
            "ORDER BY sorts and LIMIT 2 cuts in the database (the slice [:2] "
            "became LIMIT)",
        )
        n.table(
            ["name", "price", "available"],
            [(p.name, p.price, p.available) for p in products],
        )
        n.expect(
            [(p.name, p.price, p.available) for p in products]
            == [
                ("Lab Reading lamp", Decimal("15.50"), 3),
                ("Lab Desk lamp", Decimal("24.00"), 5),
            ],
            "the two cheapest lamps in stock between 10 and 100 came back, cheapest "
            "first",
        )

        n.step("EXPLAIN: how PostgreSQL runs it")
        n.say("    queryset.explain(costs=False)  -- EXPLAIN (COSTS false) <the SQL>")
        plan = queryset.explain(costs=False)
        for line in plan.splitlines():
            n.say(f"    {line}")
        n.expect(
            plan.lstrip().startswith("Limit"),
            "the plan's top node is Limit: execution stops after two rows",
        )


def category_price_summary_orm(*, parent_id: int):
    """The ORM's way of asking what category_price_summary_v01.sql asks."""
    active = Q(products__is_active=True)
    return (
        Category.objects.filter(parent_id=parent_id)
        .annotate(
            product_count=Count("products", filter=active, distinct=True),
            lowest_price=Min(
                "products__variants__price",
                filter=active & Q(products__variants__is_active=True),
            ),
        )
        .order_by("name", "id")
        .values_list("id", "name", "product_count", "lowest_price")
    )


@lab(
    "orm-vs-sql",
    chapter="17",
    summary="One question, asked through the ORM and as a raw .sql file: same rows",
)
def orm_vs_sql(n: Narrator) -> None:
    with rolled_back("default"):
        apparel = Category.objects.create(name="Lab 17 apparel", slug="lab-17-apparel")
        shirts, shoes, _hats = (
            Category.objects.create(
                name=name, slug=f"lab-17-{name.lower()}", parent=apparel
            )
            for name in ("Shirts", "Shoes", "Hats")
        )
        catalog = [
            # category, product, active?, [(price, active?), ...]
            (
                shirts,
                "Oxford",
                True,
                [("39.00", True), ("29.50", True), ("19.00", False)],
            ),
            (shirts, "Linen", True, [("45.00", True)]),
            (shirts, "Retired", False, [("5.00", True)]),
            (shoes, "Runner", True, [("89.90", True), ("79.00", True)]),
        ]
        for category, name, is_active, variants in catalog:
            product = Product.objects.create(
                category=category,
                name=f"Lab {name}",
                slug=f"lab-17-{name.lower()}",
                is_active=is_active,
            )
            for position, (price, variant_active) in enumerate(variants, start=1):
                ProductVariant.objects.create(
                    product=product,
                    sku=f"LAB-17-{name.upper()}-{position}",
                    price=Decimal(price),
                    is_active=variant_active,
                )
        n.say(
            "setup (ORM, inside the transaction): 'Lab 17 apparel' with Shirts\n"
            "(Oxford 39.00/29.50 + an inactive 19.00 variant, Linen 45.00, an\n"
            "inactive product at 5.00), Shoes (Runner 89.90/79.00) and empty Hats."
        )
        question = "per sub-category: how many active products, from what price?"

        n.step(f"The ORM: {question}")
        n.say(
            "    Category.objects.filter(parent_id=...).annotate(\n"
            '        product_count=Count("products", filter=active, distinct=True),\n'
            '        lowest_price=Min("products__variants__price", filter=...))'
        )
        queryset = category_price_summary_orm(parent_id=apparel.pk)
        sql, params = queryset.query.sql_with_params()
        n.show_sql(
            sqlparse.format(sql, reindent=True),
            params,
            label="the SQL Django generates (re-indented to read)",
        )
        with CaptureQueriesContext(connections["default"]) as captured:
            orm_rows = list(queryset)
        n.table(["id", "name", "product_count", "lowest_price"], orm_rows)
        n.expect(len(captured) == 1, "the ORM answered in one query")

        n.step(f"Raw SQL from a versioned file: {question}")
        path = "catalog/sql/queries/category_price_summary_v01.sql"
        n.say(f"    read_sql({path!r})")
        raw_rows = [
            tuple(row) for row in n.sql(read_sql(path), {"parent_id": apparel.pk})
        ]

        n.step("Compare")
        n.expect(
            orm_rows == raw_rows, "both ways return the same rows, in the same order"
        )
        n.expect(
            [row[1:] for row in raw_rows]
            == [
                ("Hats", 0, None),
                ("Shirts", 2, Decimal("29.50")),
                ("Shoes", 1, Decimal("79.00")),
            ],
            "inactive products and variants are left out; the empty category stays",
        )
        n.say(
            "The ORM composes (filters, annotations, pagination) and keeps the model\n"
            "in one place; the .sql file is the query a chapter can show and a DBA\n"
            "can read and EXPLAIN as is. The shop uses the ORM by default and .sql\n"
            "files where SQL says it better (recursive CTEs, reports)."
        )
