-- Undo row_level_security_v01.sql.
DROP POLICY accounts_address_staff ON accounts_address;
DROP POLICY accounts_address_customer ON accounts_address;
ALTER TABLE accounts_address NO FORCE ROW LEVEL SECURITY;
ALTER TABLE accounts_address DISABLE ROW LEVEL SECURITY;
