-- updated_at kept honest on orders's tables by every writer, raw SQL included:
-- shop_touch_updated_at() is shop's (shop/sql/functions/touch_updated_at_v01.sql).
CREATE TRIGGER orders_cart_touch_updated_at
    BEFORE UPDATE ON orders_cart
    FOR EACH ROW EXECUTE FUNCTION shop_touch_updated_at();
CREATE TRIGGER orders_order_touch_updated_at
    BEFORE UPDATE ON orders_order
    FOR EACH ROW EXECUTE FUNCTION shop_touch_updated_at();
CREATE TRIGGER orders_idempotency_key_touch_updated_at
    BEFORE UPDATE ON orders_idempotency_key
    FOR EACH ROW EXECUTE FUNCTION shop_touch_updated_at();
