-- Undo touch_updated_at_v01.sql.
DROP TRIGGER catalog_stock_level_touch_updated_at ON catalog_stock_level;
DROP TRIGGER catalog_product_touch_updated_at ON catalog_product;
