-- The stock ledger's partitions, oldest first, the default one last: each
-- one's bounds as PostgreSQL states them, and its rows (an estimate from
-- the statistics, as \d+ shows, not a count of millions of rows).
SELECT c.relname AS partition,
       pg_get_expr(c.relpartbound, c.oid) AS bounds,
       greatest(c.reltuples, 0)::bigint AS estimated_rows
FROM pg_inherits AS i
JOIN pg_class AS c ON c.oid = i.inhrelid
WHERE i.inhparent = 'orders_stock_movement'::regclass
ORDER BY c.relname = 'orders_stock_movement_default', c.relname;
