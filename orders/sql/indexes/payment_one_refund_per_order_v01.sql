-- One refund row per order (orders/models.py:Payment), built without
-- blocking the checkouts that write payments meanwhile; see
-- payment_one_charge_per_order_v01.sql.
CREATE UNIQUE INDEX CONCURRENTLY orders_payment_one_refund_per_order
ON orders_payment (order_id)
WHERE status IN ('refund_pending', 'refunded')
