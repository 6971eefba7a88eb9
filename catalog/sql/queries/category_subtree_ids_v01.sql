-- The ids of a category and all its descendants, for "products in Lighting"
-- to include "Desk lamps". UNION (not UNION ALL) drops rows already seen, so
-- even a corrupted tree with a cycle ends the recursion.
WITH RECURSIVE subtree AS (
    SELECT id FROM catalog_category WHERE slug = %s
  UNION
    SELECT child.id
    FROM catalog_category AS child
    JOIN subtree ON child.parent_id = subtree.id
)
SELECT id FROM subtree
