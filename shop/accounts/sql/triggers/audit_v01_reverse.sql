-- Undo audit_v01.sql: drop the triggers (the function is shop's).
DROP TRIGGER authtoken_token_audit_truncate ON authtoken_token;
DROP TRIGGER authtoken_token_audit_delete ON authtoken_token;
DROP TRIGGER authtoken_token_audit_update ON authtoken_token;
DROP TRIGGER authtoken_token_audit_insert ON authtoken_token;
DROP TRIGGER accounts_address_audit_truncate ON accounts_address;
DROP TRIGGER accounts_address_audit_delete ON accounts_address;
DROP TRIGGER accounts_address_audit_update ON accounts_address;
DROP TRIGGER accounts_address_audit_insert ON accounts_address;
DROP TRIGGER accounts_customer_audit_truncate ON accounts_customer;
DROP TRIGGER accounts_customer_audit_delete ON accounts_customer;
DROP TRIGGER accounts_customer_audit_update ON accounts_customer;
DROP TRIGGER accounts_customer_audit_insert ON accounts_customer;
DROP TRIGGER accounts_user_audit_truncate ON accounts_user;
DROP TRIGGER accounts_user_audit_delete ON accounts_user;
DROP TRIGGER accounts_user_audit_update ON accounts_user;
DROP TRIGGER accounts_user_audit_insert ON accounts_user;
