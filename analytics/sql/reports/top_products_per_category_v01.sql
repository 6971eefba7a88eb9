-- The best-selling products of each category, by units sold in paid orders,
-- with the three ranking functions side by side. Where two products sold the
-- same number of units:
--   ROW_NUMBER()  numbers them 1, 2 anyway (ties broken by product id here,
--                 so the answer is stable): exactly N rows per category
--   RANK()        gives both 1 and skips to 3: "competition" ranking
--   DENSE_RANK()  gives both 1 and goes on with 2: no gaps
-- The filter keeps the rows whose RANK() is within %(top)s: ties at the
-- edge are all kept, so a category may show more than N products. A
-- window function cannot appear in WHERE (it runs after WHERE), hence the
-- subquery.
WITH sold AS (
    SELECT p.category_id, p.id AS product_id, p.name,
           sum(l.quantity) AS units, sum(l.quantity * l.unit_price) AS revenue
    FROM orders_order_line AS l
    JOIN orders_order AS o ON o.id = l.order_id
    JOIN catalog_product_variant AS v ON v.id = l.variant_id
    JOIN catalog_product AS p ON p.id = v.product_id
    WHERE o.status = 'paid'
      AND o.created_at >= %(since)s AND o.created_at < %(until)s
    GROUP BY p.category_id, p.id, p.name
), ranked AS (
    SELECT sold.*,
           ROW_NUMBER() OVER (by_units ORDER BY units DESC, product_id) AS row_number,
           RANK() OVER (by_units ORDER BY units DESC) AS rank,
           DENSE_RANK() OVER (by_units ORDER BY units DESC) AS dense_rank
    FROM sold
    WINDOW by_units AS (PARTITION BY category_id)
)
SELECT c.slug AS category, r.product_id, r.name, r.units, r.revenue,
       r.row_number, r.rank, r.dense_rank
FROM ranked AS r
JOIN catalog_category AS c ON c.id = r.category_id
WHERE r.rank <= %(top)s
ORDER BY c.slug, r.row_number
