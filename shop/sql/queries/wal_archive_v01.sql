-- Asked by /healthz on its probe's own connection to the primary: is the WAL
-- archive, which point-in-time recovery restores from, being written?
-- pg_stat_archiver and archive_mode are readable by any role, shop_app too.
SELECT current_setting('archive_mode') AS archive_mode,
       archived_count,
       last_archived_wal,
       last_archived_time,
       failed_count,
       last_failed_wal,
       last_failed_time
FROM pg_stat_archiver
