-- Undo row_level_security_v01.sql: policies, then row-level security itself.
DROP POLICY orders_payment_job ON orders_payment;
DROP POLICY orders_payment_staff ON orders_payment;
DROP POLICY orders_payment_customer ON orders_payment;
ALTER TABLE orders_payment NO FORCE ROW LEVEL SECURITY;
ALTER TABLE orders_payment DISABLE ROW LEVEL SECURITY;

DROP POLICY orders_order_line_job ON orders_order_line;
DROP POLICY orders_order_line_staff ON orders_order_line;
DROP POLICY orders_order_line_customer ON orders_order_line;
ALTER TABLE orders_order_line NO FORCE ROW LEVEL SECURITY;
ALTER TABLE orders_order_line DISABLE ROW LEVEL SECURITY;

DROP POLICY orders_cart_item_job ON orders_cart_item;
DROP POLICY orders_cart_item_staff ON orders_cart_item;
DROP POLICY orders_cart_item_customer ON orders_cart_item;
ALTER TABLE orders_cart_item NO FORCE ROW LEVEL SECURITY;
ALTER TABLE orders_cart_item DISABLE ROW LEVEL SECURITY;

DROP POLICY orders_coupon_redemption_job ON orders_coupon_redemption;
DROP POLICY orders_coupon_redemption_staff ON orders_coupon_redemption;
DROP POLICY orders_coupon_redemption_customer ON orders_coupon_redemption;
ALTER TABLE orders_coupon_redemption NO FORCE ROW LEVEL SECURITY;
ALTER TABLE orders_coupon_redemption DISABLE ROW LEVEL SECURITY;

DROP POLICY orders_idempotency_key_job ON orders_idempotency_key;
DROP POLICY orders_idempotency_key_staff ON orders_idempotency_key;
DROP POLICY orders_idempotency_key_customer ON orders_idempotency_key;
ALTER TABLE orders_idempotency_key NO FORCE ROW LEVEL SECURITY;
ALTER TABLE orders_idempotency_key DISABLE ROW LEVEL SECURITY;

DROP POLICY orders_order_job ON orders_order;
DROP POLICY orders_order_staff ON orders_order;
DROP POLICY orders_order_customer ON orders_order;
ALTER TABLE orders_order NO FORCE ROW LEVEL SECURITY;
ALTER TABLE orders_order DISABLE ROW LEVEL SECURITY;

DROP POLICY orders_cart_job ON orders_cart;
DROP POLICY orders_cart_staff ON orders_cart;
DROP POLICY orders_cart_customer ON orders_cart;
ALTER TABLE orders_cart NO FORCE ROW LEVEL SECURITY;
ALTER TABLE orders_cart DISABLE ROW LEVEL SECURITY;
