-- Undo loader_v01.sql.
REVOKE USAGE ON SEQUENCE
    accounts_user_id_seq, accounts_customer_id_seq, accounts_address_id_seq
    FROM shop_loader;
REVOKE SELECT, INSERT ON accounts_user, accounts_customer, accounts_address
    FROM shop_loader;
