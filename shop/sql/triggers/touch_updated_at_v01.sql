-- Keep updated_at honest for every writer, the ORM's .update() and raw SQL
-- included (Django's auto_now only fires on Model.save()).
CREATE FUNCTION shop_touch_updated_at() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    NEW.updated_at := now();
    RETURN NEW;
END;
$$;

CREATE TRIGGER catalog_product_touch_updated_at
    BEFORE UPDATE ON catalog_product
    FOR EACH ROW EXECUTE FUNCTION shop_touch_updated_at();
CREATE TRIGGER catalog_stock_level_touch_updated_at
    BEFORE UPDATE ON catalog_stock_level
    FOR EACH ROW EXECUTE FUNCTION shop_touch_updated_at();
CREATE TRIGGER orders_cart_touch_updated_at
    BEFORE UPDATE ON orders_cart
    FOR EACH ROW EXECUTE FUNCTION shop_touch_updated_at();
CREATE TRIGGER orders_order_touch_updated_at
    BEFORE UPDATE ON orders_order
    FOR EACH ROW EXECUTE FUNCTION shop_touch_updated_at();
CREATE TRIGGER orders_idempotency_key_touch_updated_at
    BEFORE UPDATE ON orders_idempotency_key
    FOR EACH ROW EXECUTE FUNCTION shop_touch_updated_at();
