-- The role pgBackRest connects as (scripts/pgbackrest.sh), created
-- idempotently as the cluster superuser. It starts and stops backups,
-- switches WAL and asks for checkpoints, and nothing else: a physical
-- backup copies files as the operating system's postgres user, so this role
-- needs no table privilege to get every row into the backup, and row-level
-- security (which filters queries, not files) does not apply to it.
-- No password: pg_hba.conf lets it in over the cluster's Unix socket only.
SET client_min_messages = warning;
SELECT 'CREATE ROLE shop_backup' WHERE NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'shop_backup') \gexec
ALTER ROLE shop_backup LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION NOBYPASSRLS PASSWORD NULL;
-- pgBackRest reads settings such as data_directory and archive_command.
GRANT pg_read_all_settings TO shop_backup;
-- CHECKPOINT, for start-fast.
GRANT pg_checkpoint TO shop_backup;
-- Function privileges belong to one database: this file runs in `postgres`,
-- where pgBackRest connects (its pg1-database default).
GRANT EXECUTE ON FUNCTION pg_catalog.pg_backup_start(text, boolean) TO shop_backup;
GRANT EXECUTE ON FUNCTION pg_catalog.pg_backup_stop(boolean) TO shop_backup;
GRANT EXECUTE ON FUNCTION pg_catalog.pg_switch_wal() TO shop_backup;
GRANT EXECUTE ON FUNCTION pg_catalog.pg_create_restore_point(text) TO shop_backup;
