-- The audit trail on the orders' sensitive tables (chapter 23): orders,
-- payments and coupons. The function they call, and the log it writes, are
-- shop's: shop/sql/functions/audit_changes_v01.sql. catalog_stock_level is
-- not audited here: the stock ledger (stock_ledger_v01.sql) already records
-- each of its changes.
--
-- PostgreSQL allows transition tables only on single-event triggers: three
-- per table, plus TRUNCATE.

CREATE TRIGGER orders_order_audit_insert AFTER INSERT ON orders_order
    REFERENCING NEW TABLE AS audit_new
    FOR EACH STATEMENT EXECUTE FUNCTION shop_audit_changes('id');
CREATE TRIGGER orders_order_audit_update AFTER UPDATE ON orders_order
    REFERENCING OLD TABLE AS audit_old NEW TABLE AS audit_new
    FOR EACH STATEMENT EXECUTE FUNCTION shop_audit_changes('id');
CREATE TRIGGER orders_order_audit_delete AFTER DELETE ON orders_order
    REFERENCING OLD TABLE AS audit_old
    FOR EACH STATEMENT EXECUTE FUNCTION shop_audit_changes('id');
CREATE TRIGGER orders_order_audit_truncate AFTER TRUNCATE ON orders_order
    FOR EACH STATEMENT EXECUTE FUNCTION shop_audit_changes('id');

CREATE TRIGGER orders_payment_audit_insert AFTER INSERT ON orders_payment
    REFERENCING NEW TABLE AS audit_new
    FOR EACH STATEMENT EXECUTE FUNCTION shop_audit_changes('id');
CREATE TRIGGER orders_payment_audit_update AFTER UPDATE ON orders_payment
    REFERENCING OLD TABLE AS audit_old NEW TABLE AS audit_new
    FOR EACH STATEMENT EXECUTE FUNCTION shop_audit_changes('id');
CREATE TRIGGER orders_payment_audit_delete AFTER DELETE ON orders_payment
    REFERENCING OLD TABLE AS audit_old
    FOR EACH STATEMENT EXECUTE FUNCTION shop_audit_changes('id');
CREATE TRIGGER orders_payment_audit_truncate AFTER TRUNCATE ON orders_payment
    FOR EACH STATEMENT EXECUTE FUNCTION shop_audit_changes('id');

CREATE TRIGGER orders_coupon_audit_insert AFTER INSERT ON orders_coupon
    REFERENCING NEW TABLE AS audit_new
    FOR EACH STATEMENT EXECUTE FUNCTION shop_audit_changes('id');
CREATE TRIGGER orders_coupon_audit_update AFTER UPDATE ON orders_coupon
    REFERENCING OLD TABLE AS audit_old NEW TABLE AS audit_new
    FOR EACH STATEMENT EXECUTE FUNCTION shop_audit_changes('id');
CREATE TRIGGER orders_coupon_audit_delete AFTER DELETE ON orders_coupon
    REFERENCING OLD TABLE AS audit_old
    FOR EACH STATEMENT EXECUTE FUNCTION shop_audit_changes('id');
CREATE TRIGGER orders_coupon_audit_truncate AFTER TRUNCATE ON orders_coupon
    FOR EACH STATEMENT EXECUTE FUNCTION shop_audit_changes('id');
