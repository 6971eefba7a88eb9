// The report `category-rollup` (analytics/sql/reports/category_rollup_v01.sql)
// in Cypher, on the graph of graph_model.cypher.
//
// NOT RUN. No Neo4j server runs in this project, and this query has never
// been executed against one (the lab `nosql-models` prints it and says so).
//
// The recursive CTE becomes a variable-length pattern: CHILD_OF*0.. is the
// category itself (zero hops) and every category below it, at any depth.
// Cypher never follows one relationship twice in a path, so a cycle in the
// tree ends the walk instead of looping; but a cycle would still reach a
// category by two paths, so the subtree is collected DISTINCT first (the
// job the SQL's CYCLE clause does). Amounts are in cents (no decimal type).
MATCH (top:Category)
OPTIONAL MATCH (top)-[:CHILD_OF]->(parent:Category)
MATCH (top)<-[:CHILD_OF*0..]-(c:Category)
WITH top, parent, collect(DISTINCT c) AS subtree
UNWIND subtree AS c
OPTIONAL MATCH (c)<-[:IN]-(:Product)<-[:OF]-(:Variant)<-[line:CONTAINS]-(o:Order)
WHERE o.status = 'paid' AND o.created_at >= $since AND o.created_at < $until
RETURN top.id AS category_id, top.slug AS slug, parent.id AS parent_id,
       coalesce(sum(CASE WHEN c = top THEN line.quantity END), 0) AS own_units,
       coalesce(sum(line.quantity), 0) AS units,
       coalesce(sum(line.quantity * line.unit_price_cents), 0) AS revenue_cents
ORDER BY slug;
