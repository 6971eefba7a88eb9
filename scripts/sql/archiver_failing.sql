-- One line when the WAL archiver's last attempt failed (a failure newer
-- than the last success), nothing when it is healthy. pg_stat_archiver
-- keeps the server's counters since start or since its last reset.
SELECT format('%s failures, the last for %s at %s', failed_count, last_failed_wal, last_failed_time)
FROM pg_stat_archiver
WHERE last_failed_time IS NOT NULL
  AND (last_archived_time IS NULL OR last_failed_time > last_archived_time);
