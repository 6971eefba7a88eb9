-- Products bought together: a self-join of order lines, each line with the
-- other lines of the same paid order. a.product_id < b.product_id keeps
-- each pair once (not (x, y) and (y, x)) and never pairs a product with
-- itself; a product bought as two variants in one order counts once per
-- order (DISTINCT on the order's products first).
WITH order_products AS (
    SELECT DISTINCT l.order_id, v.product_id
    FROM orders_order_line AS l
    JOIN orders_order AS o ON o.id = l.order_id
    JOIN catalog_product_variant AS v ON v.id = l.variant_id
    WHERE o.status = 'paid'
      AND o.created_at >= %(since)s AND o.created_at < %(until)s
)
SELECT a.product_id AS product_a, b.product_id AS product_b,
       count(*) AS orders
FROM order_products AS a
JOIN order_products AS b
    ON b.order_id = a.order_id AND a.product_id < b.product_id
GROUP BY a.product_id, b.product_id
HAVING count(*) >= %(min_orders)s
ORDER BY orders DESC, product_a, product_b
LIMIT %(limit)s
