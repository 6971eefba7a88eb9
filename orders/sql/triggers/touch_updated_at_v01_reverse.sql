-- Undo touch_updated_at_v01.sql.
DROP TRIGGER orders_idempotency_key_touch_updated_at ON orders_idempotency_key;
DROP TRIGGER orders_order_touch_updated_at ON orders_order;
DROP TRIGGER orders_cart_touch_updated_at ON orders_cart;
