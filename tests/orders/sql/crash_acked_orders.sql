-- The acknowledged orders as the database holds them after a crash
-- (tests/orders/test_crash_safety.py): each must be here, with the total
-- and status its client was told.
SELECT id, total::text, status, customer_id
FROM orders_order
WHERE id = ANY(%(order_ids)s)
