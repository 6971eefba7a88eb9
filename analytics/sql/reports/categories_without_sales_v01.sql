-- Categories whose products sold nothing in the window, with a FULL JOIN:
-- the categories on one side, the window's sales per category on the other.
-- A category with no sales has a NULL sales side. Sales whose category is
-- gone would have a NULL category side, and come out too, with their
-- category id and no slug (none can today: the foreign keys PROTECT the
-- categories; this report would show it if that ever changed). A RIGHT JOIN
-- would keep only the first kind of orphan; FULL keeps both.
WITH sales AS (
    SELECT p.category_id, sum(l.quantity) AS units
    FROM orders_order_line AS l
    JOIN orders_order AS o ON o.id = l.order_id
    JOIN catalog_product_variant AS v ON v.id = l.variant_id
    JOIN catalog_product AS p ON p.id = v.product_id
    WHERE o.status = 'paid'
      AND o.created_at >= %(since)s AND o.created_at < %(until)s
    GROUP BY p.category_id
)
SELECT COALESCE(c.id, s.category_id) AS category_id, c.slug, c.name
FROM sales AS s
FULL JOIN catalog_category AS c ON c.id = s.category_id
WHERE s.category_id IS NULL OR c.id IS NULL
ORDER BY c.slug, 1
