-- Undo audit_changes_v01.sql. The apps' triggers that call it are dropped
-- first, by their own migrations' reverse.
DROP FUNCTION shop_audit_changes();
