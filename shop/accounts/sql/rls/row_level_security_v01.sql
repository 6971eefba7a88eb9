-- Row-level security on the accounts' customer-owned table, the addresses
-- (chapter 22).
-- The readers shop_ctx_*() and what the three settings mean:
-- shop/sql/rls/context_functions_v01.sql. ENABLE turns the policies on for
-- shop_app and shop_readonly; FORCE also for the table's owner.

-- Tables with a customer_id of their own. Each gets one policy per kind of
-- actor; permissive policies combine with OR. A policy without WITH CHECK
-- uses its USING expression for new rows too, so a customer can neither
-- insert a row for someone else nor move one of theirs to someone else.

ALTER TABLE accounts_address ENABLE ROW LEVEL SECURITY;
ALTER TABLE accounts_address FORCE ROW LEVEL SECURITY;
CREATE POLICY accounts_address_customer ON accounts_address
    USING (customer_id = (SELECT shop_ctx_customer_id()));
CREATE POLICY accounts_address_staff ON accounts_address
    USING ((SELECT shop_ctx_is_staff()));
