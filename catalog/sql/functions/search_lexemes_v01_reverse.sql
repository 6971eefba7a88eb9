-- Undo search_lexemes_v01.sql.
DROP FUNCTION catalog_search_lexemes(tsquery, integer);
