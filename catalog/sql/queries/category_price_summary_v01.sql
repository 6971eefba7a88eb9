-- The sub-categories of one category, each with how many active products it
-- holds and the lowest price among their active variants: the tiles on a
-- category page ("Shirts: 12 products, from 29.50").
-- LEFT JOINs keep an empty sub-category (0 products, no price); the
-- is_active tests sit in the ON clauses for the same reason: in WHERE they
-- would drop the category instead of its inactive rows.
-- COUNT(DISTINCT ...) because the variant join repeats each product once
-- per variant.
SELECT c.id,
       c.name,
       count(DISTINCT p.id) AS product_count,
       min(v.price) AS lowest_price
FROM catalog_category AS c
LEFT JOIN catalog_product AS p
       ON p.category_id = c.id AND p.is_active
LEFT JOIN catalog_product_variant AS v
       ON v.product_id = p.id AND v.is_active
WHERE c.parent_id = %(parent_id)s
GROUP BY c.id, c.name
ORDER BY c.name, c.id
