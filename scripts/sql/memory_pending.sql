-- What scripts/pg/memory.conf asks that the running server does not have
-- (scripts/services.sh: restart_if_memory_pending): 'restart' when a setting
-- read only at start (shared_buffers) differs, 'reload' when another one
-- does, nothing when the server runs with the file's values.
--
-- pg_file_settings reads the configuration files as they are now, not as
-- they were at the last reload. A value the running server cannot take
-- without a restart is reported there with an error; an entry a later one
-- overrides (ALTER SYSTEM's, in postgresql.auto.conf) is not applied and is
-- left alone: that value is the administrator's, not this file's. Every
-- setting of memory.conf is a size, compared in bytes ('1GB' = '1024MB').
SELECT CASE
    WHEN bool_or(f.error IS NOT NULL) THEN 'restart'
    WHEN bool_or(pg_size_bytes(f.setting) <> pg_size_bytes(current_setting(f.name)))
        THEN 'reload'
END
FROM pg_file_settings AS f
WHERE f.sourcefile LIKE '%/scripts/pg/memory.conf'
  AND (f.applied OR f.error IS NOT NULL);
