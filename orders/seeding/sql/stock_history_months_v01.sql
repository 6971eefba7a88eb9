-- Every month the seeded orders' history touches gets its partition before
-- its rows come (orders/seeding/stock_history.py): rows of a month without
-- one would all land in the default partition. No paid order, no months.
SELECT orders_stock_ledger_partitions_ensure(
    (min(paid_at) AT TIME ZONE 'UTC')::date,
    (max(coalesce(cancelled_at, paid_at)) AT TIME ZONE 'UTC')::date)
FROM orders_order
WHERE paid_at IS NOT NULL
HAVING count(*) > 0
