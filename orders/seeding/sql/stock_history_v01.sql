-- The seeded orders' trace in the stock ledger (orders/seeding/stock_history.py):
-- a 'sale' when each order was paid, a 'cancel' putting its goods back when
-- a paid order was later cancelled, and, at the start of the history, one
-- 'receipt' per stock row of the goods those orders took away for good.
-- The catalogue phase's 'initial' row holds today's stock, so each stock
-- row's movements still add up to its quantity on hand:
--
--     initial + receipt - sales + cancels
--   = on hand + (sold - cancelled) - sold + cancelled = on hand
--
-- Two years of months, each in its own partition: what chapter 15's
-- pruning needs to show.
WITH moves AS (
    SELECT s.id AS stock_level_id, l.quantity, o.id AS order_id,
           o.paid_at, o.cancelled_at
    FROM orders_order AS o
    JOIN orders_order_line AS l ON l.order_id = o.id
    JOIN catalog_stock_level AS s
      ON s.variant_id = l.variant_id AND s.warehouse_id = l.warehouse_id
    WHERE o.paid_at IS NOT NULL
),
opened AS (
    SELECT date_trunc('month', min(paid_at)) AS at FROM moves
)
INSERT INTO orders_stock_movement
    (stock_level_id, on_hand_delta, reserved_delta, reason, order_id, created_at)
SELECT kept.stock_level_id, kept.quantity, 0, 'receipt', NULL, opened.at
FROM (SELECT stock_level_id, sum(quantity) AS quantity
      FROM moves WHERE cancelled_at IS NULL
      GROUP BY stock_level_id) AS kept
CROSS JOIN opened
UNION ALL
SELECT stock_level_id, -quantity, 0, 'sale', order_id, paid_at FROM moves
UNION ALL
SELECT stock_level_id, quantity, 0, 'cancel', order_id, cancelled_at
FROM moves WHERE cancelled_at IS NOT NULL;
