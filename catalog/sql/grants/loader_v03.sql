-- One column more than loader_v02.sql: the seed's COPY of stock rows fires
-- the triggers that keep catalog_product.in_stock
-- (catalog/sql/triggers/product_in_stock_v01.sql), as the role that wrote
-- the rows. They lock the products and write the ones whose flag is wrong.
-- The seed writes each product's flag itself, so in practice they find
-- nothing to change; the grant is the column and nothing else.
GRANT UPDATE (in_stock) ON catalog_product TO shop_loader;
