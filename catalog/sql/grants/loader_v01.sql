-- What shop_loader, the seed's COPY, may reach of the catalog: the tables
-- the catalogue and reviews phases write (catalog/seeding/). shop_loader
-- bypasses row-level security, so these grants are its whole reach
-- (shop/sql/grants_loader_schema_v01.sql). SELECT: --if-empty looks for rows, the
-- orders phase reads the catalogue back, and the category trigger walks the
-- tree. USAGE on a sequence: the seed takes its keys from it
-- (shop/seeding/sql/reserve_ids.sql).
GRANT SELECT, INSERT ON
    catalog_category, catalog_warehouse, catalog_product,
    catalog_product_variant, catalog_stock_level, catalog_review
    TO shop_loader;
GRANT USAGE ON SEQUENCE
    catalog_category_id_seq, catalog_warehouse_id_seq, catalog_product_id_seq,
    catalog_product_variant_id_seq, catalog_stock_level_id_seq,
    catalog_review_id_seq
    TO shop_loader;
