-- One refund row per order (orders/models.py:Payment), 'refund_failed'
-- included: a refund the gateway refused stays the order's one refund, so
-- nothing owes it again. Built beside version 1 without blocking writes,
-- under a name of its own, then version 1 is dropped and this one takes
-- its name (payment_one_refund_per_order_v02_rename.sql).
CREATE UNIQUE INDEX CONCURRENTLY orders_payment_one_refund_per_order_v02
ON orders_payment (order_id)
WHERE status IN ('refund_pending', 'refunded', 'refund_failed')
