// The report `bought-together` (analytics/sql/reports/bought_together_v01.sql)
// in Cypher, on the graph of graph_model.cypher.
//
// NOT RUN. No Neo4j server runs in this project, and this query has never
// been executed against one (the lab `nosql-models` prints it and says so).
//
// The SQL joins order lines to order lines; here the pattern walks from a
// product through one order to another product. Two CONTAINS relationships
// in one pattern are never the same one (Cypher matches each relationship at
// most once per path), and a.id < b.id keeps each pair once, as in the SQL.
// count(DISTINCT o) counts orders, not lines: a product bought as two
// variants in one order counts once (the SQL's DISTINCT first).
MATCH (a:Product)<-[:OF]-(:Variant)<-[:CONTAINS]-(o:Order)
      -[:CONTAINS]->(:Variant)-[:OF]->(b:Product)
WHERE o.status = 'paid'
  AND o.created_at >= $since AND o.created_at < $until
  AND a.id < b.id
WITH a, b, count(DISTINCT o) AS orders
WHERE orders >= $min_orders
RETURN a.id AS product_a, b.id AS product_b, orders
ORDER BY orders DESC, product_a, product_b
LIMIT $limit;

// The question a product page asks: bought with this one. The walk starts at
// one node and follows its relationships; the report above, like its SQL,
// pairs every order's products with each other.
MATCH (p:Product {id: $product_id})<-[:OF]-(:Variant)<-[:CONTAINS]-(o:Order)
      -[:CONTAINS]->(:Variant)-[:OF]->(other:Product)
WHERE o.status = 'paid' AND other <> p
RETURN other.id AS product, count(DISTINCT o) AS orders
ORDER BY orders DESC, product
LIMIT 5;

// "Customers who bought this also bought", across all their orders: two more
// hops in the pattern, where the SQL would join two more tables.
MATCH (p:Product {id: $product_id})<-[:OF]-(:Variant)<-[:CONTAINS]-(:Order)
      <-[:PLACED]-(c:Customer)-[:PLACED]->(:Order)
      -[:CONTAINS]->(:Variant)-[:OF]->(other:Product)
WHERE other <> p
RETURN other.id AS product, count(DISTINCT c) AS customers
ORDER BY customers DESC, product
LIMIT 5;
