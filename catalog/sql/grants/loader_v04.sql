-- The seed COPYs the products as shop_loader, and the COPY fires the
-- trigger that writes each new product's words into catalog_search_posting
-- (catalog/sql/triggers/search_posting_v01.sql), as the role that wrote
-- the products. It inserts and nothing else.
GRANT INSERT ON catalog_search_posting TO shop_loader;
