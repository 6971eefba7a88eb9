-- The same question as customers_never_ordered_v01.sql, as an outer join:
-- every customer, their orders if any, and keep the rows where the order
-- side is NULL. Test o.id, a column that is NOT NULL in the table: a NULL
-- there can only mean "no matching row".
SELECT c.id AS customer_id, c.created_at
FROM accounts_customer AS c
LEFT JOIN orders_order AS o ON o.customer_id = c.id
WHERE o.id IS NULL
ORDER BY c.id
LIMIT %(limit)s
