-- The whole category tree, parents before children, siblings by name.
-- A recursive CTE walks down from the roots; `path` (the names from the root)
-- gives a depth-first order in one ORDER BY. Starting from the roots means a
-- cycle, which no root can reach, is never walked.
WITH RECURSIVE tree AS (
    SELECT id, name, slug, parent_id, 0 AS depth, ARRAY[name::text] AS path
    FROM catalog_category
    WHERE parent_id IS NULL
  UNION ALL
    SELECT child.id, child.name, child.slug, child.parent_id, tree.depth + 1,
           tree.path || child.name::text
    FROM catalog_category AS child
    JOIN tree ON child.parent_id = tree.id
)
SELECT id, name, slug, parent_id, depth
FROM tree
ORDER BY path;
