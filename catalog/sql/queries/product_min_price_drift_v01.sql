-- Products whose stored min_price is not the lowest price among their active
-- variants (NULL when none is active): the rows the triggers of
-- catalog/sql/triggers/product_min_price_v01.sql failed to keep. Empty when
-- all is well; the tests run it after every kind of variant write.
SELECT p.id, p.min_price AS stored, lowest.min_price AS actual
FROM catalog_product AS p
LEFT JOIN LATERAL (
    SELECT min(v.price) AS min_price
    FROM catalog_product_variant AS v
    WHERE v.product_id = p.id AND v.is_active
) AS lowest ON true
WHERE p.min_price IS DISTINCT FROM lowest.min_price
ORDER BY p.id
