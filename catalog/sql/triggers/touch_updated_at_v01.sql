-- updated_at kept honest on the catalog's tables by every writer, raw SQL included:
-- shop_touch_updated_at() is shop's (shop/sql/functions/touch_updated_at_v01.sql).
CREATE TRIGGER catalog_product_touch_updated_at
    BEFORE UPDATE ON catalog_product
    FOR EACH ROW EXECUTE FUNCTION shop_touch_updated_at();
CREATE TRIGGER catalog_stock_level_touch_updated_at
    BEFORE UPDATE ON catalog_stock_level
    FOR EACH ROW EXECUTE FUNCTION shop_touch_updated_at();
