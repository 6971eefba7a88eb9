-- Undo audit_v01.sql: drop the triggers (the function is shop's).
DROP TRIGGER orders_coupon_audit_truncate ON orders_coupon;
DROP TRIGGER orders_coupon_audit_delete ON orders_coupon;
DROP TRIGGER orders_coupon_audit_update ON orders_coupon;
DROP TRIGGER orders_coupon_audit_insert ON orders_coupon;
DROP TRIGGER orders_payment_audit_truncate ON orders_payment;
DROP TRIGGER orders_payment_audit_delete ON orders_payment;
DROP TRIGGER orders_payment_audit_update ON orders_payment;
DROP TRIGGER orders_payment_audit_insert ON orders_payment;
DROP TRIGGER orders_order_audit_truncate ON orders_order;
DROP TRIGGER orders_order_audit_delete ON orders_order;
DROP TRIGGER orders_order_audit_update ON orders_order;
DROP TRIGGER orders_order_audit_insert ON orders_order;
