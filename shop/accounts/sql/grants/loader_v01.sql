-- What shop_loader, the seed's COPY, may reach of accounts: the tables the
-- accounts phase writes (shop/accounts/seeding/), and nothing of logins
-- beyond them (API tokens, groups, permissions). shop_loader bypasses
-- row-level security, so these grants are its whole reach
-- (shop/sql/grants_loader_schema_v01.sql). SELECT: --if-empty looks for rows, and
-- the orders phase reads customers and addresses back. USAGE on a sequence:
-- the seed takes its keys from it (shop/seeding/sql/reserve_ids.sql).
GRANT SELECT, INSERT ON accounts_user, accounts_customer, accounts_address
    TO shop_loader;
GRANT USAGE ON SEQUENCE
    accounts_user_id_seq, accounts_customer_id_seq, accounts_address_id_seq
    TO shop_loader;
