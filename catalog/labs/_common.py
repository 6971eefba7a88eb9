"""The rows the catalog's labs start from, each set inserted by one statement."""

from decimal import Decimal

from shop.lab import Narrator

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
