-- The lab search-postings (chapter 14): every word of one product's search
-- document, its posting (NULL where the trigger wrote none), and
-- ts_rank_cd for that word alone, the word quoted as tsquery input wants
-- it (quotes and backslashes doubled), so that nothing is stemmed again.
SELECT word.lexeme,
       posting.rank,
       ts_rank_cd(
           p.search_document,
           ('''' || replace(replace(word.lexeme, '\', '\\'), '''', '''''') || '''')::tsquery
       )::double precision AS ts_rank_cd
FROM catalog_product AS p
CROSS JOIN unnest(p.search_document) AS word
LEFT JOIN catalog_search_posting AS posting
    ON posting.product_id = p.id AND posting.lexeme = word.lexeme COLLATE "C"
WHERE p.slug = %s
ORDER BY word.lexeme
