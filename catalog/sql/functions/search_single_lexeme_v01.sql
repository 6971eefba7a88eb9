-- The one lexeme a search matches, when it matches exactly one: then its
-- best products are the first rows of that lexeme in the posting index
-- (catalog/sql/triggers/search_posting_v01.sql), in the order and with the
-- ranks ts_rank_cd gives them. NULL for any other query, which the GIN
-- index then answers and ts_rank_cd ranks as before.
--
-- One operand, as tsquery prints it: 'lamp' or 'lamp':* (quotes and
-- backslashes in the lexeme doubled). A word is its own lexeme. A prefix
-- stands for every lexeme that starts with it, and a product holding two
-- of them is ranked on both, which no single posting holds: so a prefix
-- qualifies only while one lexeme of the whole catalogue starts with it.
-- The first two lexemes from the prefix on, in byte order, say so in two
-- probes of the index. Weights (:A) and phrases are not the shop's and
-- qualify never.
CREATE FUNCTION catalog_search_single_lexeme(query tsquery) RETURNS text
LANGUAGE plpgsql STABLE PARALLEL SAFE STRICT AS $fn$
DECLARE
    parts text[];
    operand text;
    first_lexeme text;
    second_lexeme text;
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
        RETURN operand;
    END IF;

    SELECT lexeme INTO first_lexeme
    FROM catalog_search_posting
    WHERE lexeme >= operand COLLATE "C"
    ORDER BY lexeme
    LIMIT 1;
    IF first_lexeme IS NULL OR NOT starts_with(first_lexeme, operand) THEN
        RETURN NULL;
    END IF;
    SELECT lexeme INTO second_lexeme
    FROM catalog_search_posting
    WHERE lexeme > first_lexeme
    ORDER BY lexeme
    LIMIT 1;
    IF second_lexeme IS NOT NULL AND starts_with(second_lexeme, operand) THEN
        RETURN NULL;
    END IF;
    RETURN first_lexeme;
END;
$fn$;
