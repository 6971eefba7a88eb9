-- Undo audit_log_v01.sql. Dropping the table drops the log with it: a
-- migration reversed on a database whose trail matters should be preceded
-- by a copy (pg_dump -t shop_audit_log).
DROP FUNCTION shop_audit_log_purge(timestamptz);
DROP TABLE shop_audit_log;
DROP FUNCTION shop_audit_log_refuse_change();
