-- Undo loader_v01.sql.
REVOKE USAGE ON SEQUENCE
    catalog_category_id_seq, catalog_warehouse_id_seq, catalog_product_id_seq,
    catalog_product_variant_id_seq, catalog_stock_level_id_seq,
    catalog_review_id_seq
    FROM shop_loader;
REVOKE SELECT, INSERT ON
    catalog_category, catalog_warehouse, catalog_product,
    catalog_product_variant, catalog_stock_level, catalog_review
    FROM shop_loader;
