-- Undo pgaudit_object_grants_v01.sql.
REVOKE INSERT, UPDATE, DELETE ON orders_payment FROM shop_auditor;
