-- A lab's own catalogue, in one statement: a category, a product with
-- `variants` variants, a warehouse and, unless `on_hand` is NULL, a stock row
-- per variant. Each CTE reads the ids an earlier one RETURNs.
WITH category AS (
    INSERT INTO catalog_category (name, slug)
    VALUES (%(name)s, %(slug)s)
    RETURNING id
), product AS (
    INSERT INTO catalog_product
        (category_id, name, slug, description, is_active, created_at, updated_at)
    SELECT id, %(name)s, %(slug)s, '', true, now(), now() FROM category
    RETURNING id
), warehouse AS (
    INSERT INTO catalog_warehouse (code, name, is_default)
    VALUES (%(code)s, %(name)s, false)
    RETURNING id
), variant AS (
    INSERT INTO catalog_product_variant (product_id, sku, name, price, is_active)
    SELECT product.id, %(code)s || '-' || n, '', %(price)s, true
    FROM product, generate_series(1, %(variants)s) AS n
    RETURNING id, sku
), stock AS (
    INSERT INTO catalog_stock_level
        (variant_id, warehouse_id, quantity_on_hand, reserved, updated_at)
    SELECT variant.id, warehouse.id, %(on_hand)s, 0, now()
    FROM variant, warehouse
    WHERE %(on_hand)s::integer IS NOT NULL
    RETURNING id, variant_id, quantity_on_hand
)
SELECT stock.id AS stock_id, variant.id AS variant_id, variant.sku,
       warehouse.id AS warehouse_id, stock.quantity_on_hand,
       product.id AS product_id, category.id AS category_id
FROM variant
CROSS JOIN warehouse
CROSS JOIN product
CROSS JOIN category
LEFT JOIN stock ON stock.variant_id = variant.id
ORDER BY variant.id
