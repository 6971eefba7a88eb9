-- The same question as customers_never_ordered_v01.sql, as an outer join:
-- every customer, their orders if any, and keep the rows where the order
-- side is NULL. Test the join's own column, o.customer_id: the join clause
-- o.customer_id = c.id can never be true for a NULL there, so PostgreSQL
-- knows that "o.customer_id IS NULL" means "no match" and plans an anti
-- join, as for NOT EXISTS. Testing o.id instead (the primary key, NOT NULL,
-- the usual advice) gives the same rows, but the planner does not make that
-- inference: it joins every order and filters afterwards (chapter 07's lab
-- shows both plans).
SELECT c.id AS customer_id, c.created_at
FROM accounts_customer AS c
LEFT JOIN orders_order AS o ON o.customer_id = c.id
WHERE o.customer_id IS NULL
ORDER BY c.id
LIMIT %(limit)s
