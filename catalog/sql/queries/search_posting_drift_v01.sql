-- Postings that are not what the products' search documents say: a word
-- with no posting, a posting of a word the document no longer holds, or a
-- rank that is not ts_rank_cd's. The rows the triggers of
-- catalog/sql/triggers/search_posting_v01.sql failed to keep. Empty when
-- all is well; the tests run it after every kind of product write.
SELECT
    coalesce(kept.product_id, fresh.product_id) AS product_id,
    coalesce(kept.lexeme, fresh.lexeme) AS lexeme,
    kept.rank AS kept_rank,
    fresh.rank AS fresh_rank
FROM catalog_search_posting AS kept
FULL JOIN (
    SELECT p.id AS product_id, posting.lexeme COLLATE "C" AS lexeme, posting.rank
    FROM catalog_product AS p
    CROSS JOIN LATERAL catalog_search_postings(p.search_document) AS posting
) AS fresh
    ON fresh.product_id = kept.product_id AND fresh.lexeme = kept.lexeme
WHERE kept.rank IS DISTINCT FROM fresh.rank
ORDER BY 1, 2
