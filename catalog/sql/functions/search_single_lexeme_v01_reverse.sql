-- Undo search_single_lexeme_v01.sql.
DROP FUNCTION catalog_search_single_lexeme(tsquery);
