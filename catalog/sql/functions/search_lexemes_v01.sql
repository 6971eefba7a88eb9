-- The lexemes of the catalogue that a one-term query stands for
-- (catalog.selectors.search_plan). A word stands for itself. A prefix,
-- 'des':*, stands for every lexeme of catalog_search_posting that starts
-- with it, here found in byte order, one probe of the posting index each
-- (the next lexeme after the last one found), and at most max_count + 1 of
-- them: one more than the caller can use says "too many".
--
-- The caller reads the answer two ways. One lexeme: the search's best
-- products are the first rows of that lexeme in catalog_posting_rank_idx,
-- ranked as ts_rank_cd ranks them. A few: the prefix is rewritten as their
-- OR, 'desk' | 'design', which matches the same products with the same
-- ts_rank_cd, and which the GIN index answers from one entry per lexeme
-- instead of collecting every row of every lexeme that starts with "des"
-- before it can intersect them with the other words.
--
-- The query as tsquery prints one operand: 'lamp' or 'lamp':*, quotes and
-- backslashes in the lexeme doubled. Anything else (two operands, weights
-- such as :A, a phrase, a negation) is not the shop's and gets NULL.
CREATE FUNCTION catalog_search_lexemes(query tsquery, max_count integer)
RETURNS text[]
LANGUAGE plpgsql STABLE PARALLEL SAFE STRICT AS $fn$
DECLARE
    parts text[];
    operand text;
    found text[] := '{}';
    next_lexeme text;
BEGIN
    IF numnode(query) <> 1 THEN
        RETURN NULL;
    END IF;
    parts := regexp_match(query::text, $re$^'((?:[^'\\]|''|\\.)*)'(:\*)?$$re$);
    IF parts IS NULL THEN
        RETURN NULL;
    END IF;
    operand := regexp_replace(parts[1], $re$'(')|\\(.)$re$, $re$\1\2$re$, 'g');
    IF parts[2] IS NULL THEN
        RETURN ARRAY[operand];
    END IF;

    SELECT lexeme INTO next_lexeme
    FROM catalog_search_posting
    WHERE lexeme >= operand COLLATE "C"
    ORDER BY lexeme
    LIMIT 1;
    WHILE next_lexeme IS NOT NULL
          AND starts_with(next_lexeme, operand)
          AND cardinality(found) <= max_count LOOP
        found := found || next_lexeme;
        SELECT lexeme INTO next_lexeme
        FROM catalog_search_posting
        WHERE lexeme > next_lexeme
        ORDER BY lexeme
        LIMIT 1;
    END LOOP;
    RETURN found;
END;
$fn$;
