-- Sales rolled up the category tree: each category's own sales plus every
-- descendant's. A recursive CTE walks the tree once, pairing each category
-- with itself and each of its descendants (ancestor, descendant); joining
-- the sales per category to the descendant side and grouping by the
-- ancestor adds a subtree up. A trigger refuses a cycle in the tree (a -> b
-- -> a; catalog/sql/triggers/category_no_cycle_v01.sql), and the CYCLE
-- clause (PostgreSQL 14) is this query's own guard should one get in all
-- the same (the trigger disabled for a bulk load): a walk that comes back
-- to a category it passed is marked and not followed, and the rollup leaves
-- that row out instead of looping or counting twice.
WITH RECURSIVE subtree (ancestor_id, category_id) AS (
    SELECT id, id FROM catalog_category
    UNION ALL
    SELECT s.ancestor_id, c.id
    FROM subtree AS s
    JOIN catalog_category AS c ON c.parent_id = s.category_id
) CYCLE category_id SET in_cycle USING path, sales AS (
    SELECT p.category_id, sum(l.quantity) AS units,
           sum(l.quantity * l.unit_price) AS revenue
    FROM orders_order_line AS l
    JOIN orders_order AS o ON o.id = l.order_id
    JOIN catalog_product_variant AS v ON v.id = l.variant_id
    JOIN catalog_product AS p ON p.id = v.product_id
    WHERE o.status = 'paid'
      AND o.created_at >= %(since)s AND o.created_at < %(until)s
    GROUP BY p.category_id
)
SELECT c.id AS category_id, c.slug, c.parent_id,
       COALESCE(own.units, 0) AS own_units,
       COALESCE(sum(s.units), 0) AS units,
       COALESCE(sum(s.revenue), 0) AS revenue
FROM catalog_category AS c
JOIN subtree AS t ON t.ancestor_id = c.id AND NOT t.in_cycle
LEFT JOIN sales AS s ON s.category_id = t.category_id
LEFT JOIN sales AS own ON own.category_id = c.id
GROUP BY c.id, c.slug, c.parent_id, own.units
ORDER BY c.slug
