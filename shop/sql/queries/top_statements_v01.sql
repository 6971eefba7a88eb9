-- The statements that cost this database most, from pg_stat_statements
-- (chapter 6 reads it, chapter 24 watches it). Run as shop_monitor, whose
-- pg_read_all_stats shows every role's statement text; any other role sees
-- '<insufficient privilege>' for statements not its own.
-- The order parameter picks the ranking: 'total' (what the server spent in all, the
-- one to start from), 'mean' (the slowest per call) or 'calls'. The CASE
-- keeps it a parameter, never text pasted into the ORDER BY.
SELECT s.queryid,
       r.rolname AS role,
       s.calls,
       s.total_exec_time AS total_exec_ms,
       s.mean_exec_time AS mean_exec_ms,
       s.rows,
       s.shared_blks_hit,
       s.shared_blks_read,
       s.query
FROM pg_stat_statements AS s
LEFT JOIN pg_roles AS r ON r.oid = s.userid
WHERE s.dbid = (SELECT oid FROM pg_database WHERE datname = current_database())
ORDER BY CASE %(order)s
             WHEN 'total' THEN s.total_exec_time
             WHEN 'mean' THEN s.mean_exec_time
             ELSE s.calls
         END DESC,
         s.queryid
LIMIT %(limit)s
