-- The order archive's partitions: each one's hash bound and the foreign
-- server its rows live on. No rows before `manage.py shards setup`.
SELECT c.relname AS partition,
       pg_get_expr(c.relpartbound, c.oid) AS bound,
       s.srvname AS server,
       (SELECT split_part(option, '=', 2)
        FROM unnest(s.srvoptions) AS option
        WHERE split_part(option, '=', 1) = 'port') AS port
FROM pg_inherits AS i
JOIN pg_class AS c ON c.oid = i.inhrelid
JOIN pg_foreign_table AS f ON f.ftrelid = c.oid
JOIN pg_foreign_server AS s ON s.oid = f.ftserver
WHERE i.inhparent = to_regclass('shards.order_history')
ORDER BY c.relname;
