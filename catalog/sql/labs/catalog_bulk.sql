-- A catalogue large enough for the planner to care, in one statement, for
-- the labs on plans and indexes (chapters 06 and 14): `categories`
-- categories, `products` products spread over them round-robin, one
-- variant each. Deterministic (no random()): the same plans on every run.
--
-- Like the shop's: every tenth product is off sale, and one in twenty has
-- no active variant (min_price NULL), so about 85 in 100 are listed. min_price is
-- written with the product, already right, so the triggers on the
-- variants' INSERT find nothing to correct and rewrite no product.
WITH category AS (
    INSERT INTO catalog_category (name, slug)
    SELECT %(name)s || ' ' || c, %(slug)s || '-' || c
    FROM generate_series(1, %(categories)s) AS c
    RETURNING id, slug
), numbered AS (
    SELECT id, row_number() OVER (ORDER BY id) - 1 AS position FROM category
), spec AS (
    SELECT n,
           mod(n, 10) <> 0 AS on_sale,
           mod(n, 20) <> 7 AS variant_active,
           -- 5.00 to 499.99, scattered: neighbours in n are not in price.
           (500 + mod(n * 7919, 49500)) / 100.0 AS price,
           (ARRAY['Walnut', 'Brass', 'Oak', 'Linen', 'Steel', 'Marble', 'Rattan'])
               [1 + mod(n, 7)]
           || ' ' ||
           (ARRAY['desk lamp', 'floor lamp', 'armchair', 'bookshelf', 'side table',
                  'rug', 'mirror', 'pendant light'])[1 + mod(n / 7, 8)] AS title
    FROM generate_series(1, %(products)s) AS n
), product AS (
    INSERT INTO catalog_product
        (category_id, name, slug, description, is_active, created_at, updated_at,
         min_price)
    SELECT numbered.id, spec.title || ' ' || spec.n, %(slug)s || '-p' || spec.n,
           'A ' || lower(spec.title) || ' for the lab.', spec.on_sale,
           now() - spec.n * interval '1 minute', now(),
           CASE WHEN spec.variant_active THEN spec.price END
    FROM spec
    JOIN numbered ON numbered.position = mod(spec.n, %(categories)s)
    RETURNING id, slug
), variant AS (
    INSERT INTO catalog_product_variant (product_id, sku, name, price, is_active)
    SELECT product.id, %(code)s || '-' || lpad(spec.n::text, 6, '0'), '',
           spec.price, spec.variant_active
    FROM spec
    JOIN product ON product.slug = %(slug)s || '-p' || spec.n
    RETURNING id
)
SELECT (SELECT count(*) FROM category) AS categories,
       (SELECT count(*) FROM product) AS products,
       (SELECT count(*) FROM variant) AS variants
