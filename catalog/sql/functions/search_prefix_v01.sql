-- The tsquery for a word still being typed (catalog.selectors.search_query):
-- its English stem as a prefix, 'lamps' -> 'lamp':*, so that the GIN index
-- on search_document finds every lexeme that starts with it. A stop word
-- has no stem ("the" of "theatre" would match nothing), so then the word
-- itself, lower-cased, as the 'simple' configuration gives it.
--
-- IMMUTABLE, like the to_tsquery(regconfig, text) it calls: the planner
-- inlines it and folds a constant argument into a constant tsquery, whose
-- selectivity it estimates from the column's statistics.
CREATE FUNCTION catalog_search_prefix(word text) RETURNS tsquery
LANGUAGE sql IMMUTABLE PARALLEL SAFE STRICT AS $$
    SELECT CASE
        WHEN numnode(to_tsquery('english'::regconfig, word || ':*')) > 0
            THEN to_tsquery('english'::regconfig, word || ':*')
        ELSE to_tsquery('simple'::regconfig, word || ':*')
    END
$$;
