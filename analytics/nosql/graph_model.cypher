// The shop's orders and catalogue as a Neo4j graph: just enough of them for
// the two reports chapter 20 sets beside their SQL (bought_together.cypher,
// category_rollup.cypher).
//
// NOT RUN. No Neo4j server runs in this project, and none of these
// statements has ever been executed against one: this is a design to read
// (the lab `nosql-models` prints it and says so).
//
//   (:Customer)-[:PLACED]->(:Order)-[:CONTAINS]->(:Variant)-[:OF]->(:Product)
//   (:Product)-[:IN]->(:Category)-[:CHILD_OF]->(:Category)
//
// One CONTAINS relationship per order line: an order holds each variant at
// most once (orders_order_line_one_per_variant), so a line is an (order,
// variant) pair, and its quantity and price are the relationship's
// properties. Neo4j has no decimal type, only 64-bit integers and floats, so
// money is stored in cents, as an integer.

CREATE CONSTRAINT customer_id IF NOT EXISTS FOR (c:Customer) REQUIRE c.id IS UNIQUE;
CREATE CONSTRAINT order_id IF NOT EXISTS FOR (o:Order) REQUIRE o.id IS UNIQUE;
CREATE CONSTRAINT variant_id IF NOT EXISTS FOR (v:Variant) REQUIRE v.id IS UNIQUE;
CREATE CONSTRAINT product_id IF NOT EXISTS FOR (p:Product) REQUIRE p.id IS UNIQUE;
CREATE CONSTRAINT category_id IF NOT EXISTS FOR (c:Category) REQUIRE c.id IS UNIQUE;

// Loading, from the rows PostgreSQL holds (a job would page through them):
// MERGE finds the node or relationship its pattern describes, or creates it,
// so a second load of the same rows changes nothing.
UNWIND $categories AS row
MERGE (c:Category {id: row.id})
SET c.slug = row.slug
WITH c, row
WHERE row.parent_id IS NOT NULL
MERGE (parent:Category {id: row.parent_id})
MERGE (c)-[:CHILD_OF]->(parent);

UNWIND $variants AS row
MERGE (p:Product {id: row.product_id})
MERGE (v:Variant {id: row.id})
MERGE (v)-[:OF]->(p)
MERGE (c:Category {id: row.category_id})
MERGE (p)-[:IN]->(c);

UNWIND $lines AS row
MERGE (customer:Customer {id: row.customer_id})
MERGE (o:Order {id: row.order_id})
SET o.status = row.status, o.created_at = datetime(row.created_at)
MERGE (customer)-[:PLACED]->(o)
MERGE (v:Variant {id: row.variant_id})
MERGE (o)-[line:CONTAINS]->(v)
SET line.quantity = row.quantity, line.unit_price_cents = row.unit_price_cents;
