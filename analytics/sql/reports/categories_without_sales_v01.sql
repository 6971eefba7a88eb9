-- Categories whose products sold nothing in the window, with a FULL JOIN:
-- the categories on one side, the window's sales per category on the other.
-- A category with no sales has a NULL sales side; a sale whose category is
-- gone would have a NULL category side (none can: the foreign keys PROTECT
-- them, and this report would show it if that ever changed). A RIGHT JOIN
-- is the LEFT JOIN with its sides swapped; FULL keeps both kinds of orphan.
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
SELECT c.id AS category_id, c.slug, c.name
FROM sales AS s
FULL JOIN catalog_category AS c ON c.id = s.category_id
WHERE s.category_id IS NULL
ORDER BY c.slug
