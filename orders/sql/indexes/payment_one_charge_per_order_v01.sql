-- One charge row per order (orders/models.py:Payment), built without
-- blocking the checkouts that write payments meanwhile. The definition is
-- the one Django's UniqueConstraint would create, so the model's state and
-- the database agree (migration 0009 tells Django it is the constraint).
CREATE UNIQUE INDEX CONCURRENTLY orders_payment_one_charge_per_order
ON orders_payment (order_id)
WHERE status IN ('unknown', 'not_captured', 'declined', 'captured')
