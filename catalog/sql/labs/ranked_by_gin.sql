-- The lab search-postings (chapter 14): a page of a one-word search ranked
-- the way it was before the posting index, through the GIN index, every
-- match fetched and ranked by ts_rank_cd, the best page-size kept. The same
-- rows as the product list's relevance ordering, in the same order.
SELECT p.id, ts_rank_cd(p.search_document, q.query)::double precision AS rank
FROM catalog_product AS p,
     (SELECT catalog_search_prefix(%(word)s) AS query) AS q
WHERE p.is_active
  AND p.min_price IS NOT NULL
  AND p.search_document @@ q.query
ORDER BY rank DESC, p.id DESC
LIMIT %(page)s
