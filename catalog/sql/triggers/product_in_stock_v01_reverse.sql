-- Undo product_in_stock_v01.sql (the column itself goes with the migration's
-- AddField).
DROP TRIGGER catalog_product_keep_in_stock ON catalog_product;
DROP FUNCTION catalog_product_keep_in_stock();
DROP TRIGGER catalog_stock_in_stock_truncate ON catalog_stock_level;
DROP FUNCTION catalog_stock_truncate_in_stock();
DROP TRIGGER catalog_variant_in_stock_delete ON catalog_product_variant;
DROP TRIGGER catalog_variant_in_stock_update ON catalog_product_variant;
DROP TRIGGER catalog_variant_in_stock_insert ON catalog_product_variant;
DROP FUNCTION catalog_variant_refresh_in_stock();
DROP TRIGGER catalog_stock_in_stock_delete ON catalog_stock_level;
DROP TRIGGER catalog_stock_in_stock_update ON catalog_stock_level;
DROP TRIGGER catalog_stock_in_stock_insert ON catalog_stock_level;
DROP FUNCTION catalog_stock_refresh_in_stock();
DROP FUNCTION catalog_product_refresh_in_stock(bigint[]);
