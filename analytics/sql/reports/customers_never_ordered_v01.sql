-- Customers who never placed an order, as an anti-join. This is the form
-- the API runs; customers_never_ordered_left_join_v01.sql asks the same
-- question with LEFT JOIN ... IS NULL, and PostgreSQL plans both as an anti
-- join, hash, merge or nested loop by cost (chapter 07's lab shows them). NOT EXISTS says what is meant
-- and cannot be fooled by NULLs; NOT IN (SELECT customer_id ...) can: one
-- NULL in the subquery and it answers nothing at all.
SELECT c.id AS customer_id, c.created_at
FROM accounts_customer AS c
WHERE NOT EXISTS (SELECT FROM orders_order AS o WHERE o.customer_id = c.id)
ORDER BY c.id
LIMIT %(limit)s
