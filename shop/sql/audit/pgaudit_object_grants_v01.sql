-- What pgaudit's object audit logs (chapter 23): every statement that would
-- need one of these privileges, were it run as shop_auditor (pgaudit.role in
-- the server's settings, scripts/services.sh). The role never logs in, so
-- the grants give no one any access; they only select the statements.
--
-- Reads of the encrypted tax id (a column grant: reading the phone number
-- or the e-mail of a customer is not logged), and every change to customers
-- and to payments. Writes of the app's other tables are left to the trigger
-- trail (shop/sql/triggers/audit_v01.sql), which also records old and new
-- values; pgaudit records the statement, whoever ran it, triggers or not.
GRANT SELECT (tax_id_encrypted), UPDATE, DELETE ON accounts_customer TO shop_auditor;
GRANT INSERT, UPDATE, DELETE ON orders_payment TO shop_auditor;
