-- The audit trail on the accounts' sensitive tables (chapter 23): users,
-- customers, addresses and API tokens. The function they call, and the log
-- it writes, are shop's: shop/sql/functions/audit_changes_v01.sql.
--
-- PostgreSQL allows transition tables only on single-event triggers: three
-- per table, plus TRUNCATE.

CREATE TRIGGER accounts_user_audit_insert AFTER INSERT ON accounts_user
    REFERENCING NEW TABLE AS audit_new
    FOR EACH STATEMENT EXECUTE FUNCTION shop_audit_changes('id', 'password');
CREATE TRIGGER accounts_user_audit_update AFTER UPDATE ON accounts_user
    REFERENCING OLD TABLE AS audit_old NEW TABLE AS audit_new
    FOR EACH STATEMENT EXECUTE FUNCTION shop_audit_changes('id', 'password');
CREATE TRIGGER accounts_user_audit_delete AFTER DELETE ON accounts_user
    REFERENCING OLD TABLE AS audit_old
    FOR EACH STATEMENT EXECUTE FUNCTION shop_audit_changes('id', 'password');
CREATE TRIGGER accounts_user_audit_truncate AFTER TRUNCATE ON accounts_user
    FOR EACH STATEMENT EXECUTE FUNCTION shop_audit_changes('id', 'password');

CREATE TRIGGER accounts_customer_audit_insert AFTER INSERT ON accounts_customer
    REFERENCING NEW TABLE AS audit_new
    FOR EACH STATEMENT EXECUTE FUNCTION shop_audit_changes('id');
CREATE TRIGGER accounts_customer_audit_update AFTER UPDATE ON accounts_customer
    REFERENCING OLD TABLE AS audit_old NEW TABLE AS audit_new
    FOR EACH STATEMENT EXECUTE FUNCTION shop_audit_changes('id');
CREATE TRIGGER accounts_customer_audit_delete AFTER DELETE ON accounts_customer
    REFERENCING OLD TABLE AS audit_old
    FOR EACH STATEMENT EXECUTE FUNCTION shop_audit_changes('id');
CREATE TRIGGER accounts_customer_audit_truncate AFTER TRUNCATE ON accounts_customer
    FOR EACH STATEMENT EXECUTE FUNCTION shop_audit_changes('id');

CREATE TRIGGER accounts_address_audit_insert AFTER INSERT ON accounts_address
    REFERENCING NEW TABLE AS audit_new
    FOR EACH STATEMENT EXECUTE FUNCTION shop_audit_changes('id');
CREATE TRIGGER accounts_address_audit_update AFTER UPDATE ON accounts_address
    REFERENCING OLD TABLE AS audit_old NEW TABLE AS audit_new
    FOR EACH STATEMENT EXECUTE FUNCTION shop_audit_changes('id');
CREATE TRIGGER accounts_address_audit_delete AFTER DELETE ON accounts_address
    REFERENCING OLD TABLE AS audit_old
    FOR EACH STATEMENT EXECUTE FUNCTION shop_audit_changes('id');
CREATE TRIGGER accounts_address_audit_truncate AFTER TRUNCATE ON accounts_address
    FOR EACH STATEMENT EXECUTE FUNCTION shop_audit_changes('id');

-- The token's key is its primary key and the secret itself: identify the
-- row by its user (one token per user) and never copy the key.
CREATE TRIGGER authtoken_token_audit_insert AFTER INSERT ON authtoken_token
    REFERENCING NEW TABLE AS audit_new
    FOR EACH STATEMENT EXECUTE FUNCTION shop_audit_changes('user_id', 'key');
CREATE TRIGGER authtoken_token_audit_update AFTER UPDATE ON authtoken_token
    REFERENCING OLD TABLE AS audit_old NEW TABLE AS audit_new
    FOR EACH STATEMENT EXECUTE FUNCTION shop_audit_changes('user_id', 'key');
CREATE TRIGGER authtoken_token_audit_delete AFTER DELETE ON authtoken_token
    REFERENCING OLD TABLE AS audit_old
    FOR EACH STATEMENT EXECUTE FUNCTION shop_audit_changes('user_id', 'key');
CREATE TRIGGER authtoken_token_audit_truncate AFTER TRUNCATE ON authtoken_token
    FOR EACH STATEMENT EXECUTE FUNCTION shop_audit_changes('user_id', 'key');
