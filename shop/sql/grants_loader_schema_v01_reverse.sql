-- Undo grants_loader_schema_v01.sql.
REVOKE USAGE ON SCHEMA public FROM shop_loader;
