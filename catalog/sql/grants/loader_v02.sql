-- One column more than loader_v01.sql: the seed's COPY of variants
-- fires the triggers that keep catalog_product.min_price
-- (catalog/sql/triggers/product_min_price_v01.sql), and they run as the
-- role that wrote the variants. They lock the affected products (FOR UPDATE
-- needs UPDATE on a column) and write the ones whose minimum changed. The
-- seed writes each product's minimum itself, so in practice they find
-- nothing to change; the grant is the column and nothing else.
GRANT UPDATE (min_price) ON catalog_product TO shop_loader;
