-- Undo search_posting_v01.sql: the triggers and functions, and the rows it
-- wrote, which nothing would keep any more (the table itself goes with the
-- migration's CreateModel).
DROP TRIGGER catalog_product_postings_update ON catalog_product;
DROP FUNCTION catalog_product_update_postings();
DROP TRIGGER catalog_product_postings_insert ON catalog_product;
DROP FUNCTION catalog_product_insert_postings();
DROP FUNCTION catalog_search_postings(tsvector);
TRUNCATE catalog_search_posting;
