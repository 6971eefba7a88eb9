-- Undo product_min_price_v01.sql (the column itself goes with the migration's
-- AddField).
DROP TRIGGER catalog_product_keep_min_price ON catalog_product;
DROP FUNCTION catalog_product_keep_min_price();
DROP TRIGGER catalog_variant_min_price_truncate ON catalog_product_variant;
DROP FUNCTION catalog_variant_truncate_min_price();
DROP TRIGGER catalog_variant_min_price_delete ON catalog_product_variant;
DROP TRIGGER catalog_variant_min_price_update ON catalog_product_variant;
DROP TRIGGER catalog_variant_min_price_insert ON catalog_product_variant;
DROP FUNCTION catalog_variant_refresh_min_price();
DROP FUNCTION catalog_product_refresh_min_price(bigint[]);
