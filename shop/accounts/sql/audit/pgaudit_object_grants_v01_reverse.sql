-- Undo pgaudit_object_grants_v01.sql.
REVOKE SELECT (tax_id_encrypted), UPDATE, DELETE ON accounts_customer FROM shop_auditor;
