-- Undo search_prefix_v01.sql.
DROP FUNCTION catalog_search_prefix(text);
