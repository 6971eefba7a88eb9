-- Undo search_posting_v01.sql (the table goes with the migration's
-- CreateModel, and its rows with it).
DROP TRIGGER catalog_product_postings_update ON catalog_product;
DROP FUNCTION catalog_product_update_postings();
DROP TRIGGER catalog_product_postings_insert ON catalog_product;
DROP FUNCTION catalog_product_insert_postings();
DROP FUNCTION catalog_search_postings(tsvector);
