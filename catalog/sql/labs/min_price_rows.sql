-- The min-price lab's catalogue (chapter 18), in one statement: a category
-- and `products` products, each with two active variants, a cheap one and a
-- dear one. One row per product: its id and its two variants' ids.
--
-- The variants' INSERT fires the min_price trigger once, at the end of the
-- statement, for every product at once: each starts with min_price = cheap.
WITH category AS (
    INSERT INTO catalog_category (name, slug)
    VALUES (%(name)s, %(slug)s)
    RETURNING id
), product AS (
    INSERT INTO catalog_product
        (category_id, name, slug, description, is_active, created_at, updated_at)
    SELECT category.id, %(name)s || ' ' || n, %(slug)s || '-' || n, '',
           %(is_active)s, now(), now()
    FROM category, generate_series(1, %(products)s) AS n
    RETURNING id, slug
), variant AS (
    INSERT INTO catalog_product_variant (product_id, sku, name, price, is_active)
    SELECT product.id, upper(product.slug || '-' || side.kind), side.kind,
           side.price, true
    FROM product
    CROSS JOIN (
        VALUES ('cheap', %(cheap)s::numeric), ('dear', %(dear)s::numeric)
    ) AS side (kind, price)
    RETURNING id, product_id, name AS kind
)
SELECT product_id,
       min(id) FILTER (WHERE kind = 'cheap') AS cheap_id,
       min(id) FILTER (WHERE kind = 'dear') AS dear_id
FROM variant
GROUP BY product_id
ORDER BY product_id
