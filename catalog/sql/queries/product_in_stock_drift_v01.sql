-- Products whose stored in_stock is not what their rows say: some active
-- variant with a unit available (on hand above reserved) in a warehouse.
-- The rows the triggers of catalog/sql/triggers/product_in_stock_v01.sql
-- failed to keep. Empty when all is well; the tests run it after every kind
-- of stock and variant write.
SELECT p.id, p.in_stock AS stored, NOT p.in_stock AS actual
FROM catalog_product AS p
WHERE p.in_stock IS DISTINCT FROM EXISTS (
    SELECT 1
    FROM catalog_product_variant AS v
    JOIN catalog_stock_level AS s ON s.variant_id = v.id
    WHERE v.product_id = p.id
      AND v.is_active
      AND s.quantity_on_hand > s.reserved
)
ORDER BY p.id
