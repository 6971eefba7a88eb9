-- pgp_sym_encrypt / pgp_sym_decrypt for the columns encrypted at rest
-- (accounts_customer.tax_id_encrypted, shop/crypto.py).
--
-- pgcrypto is a trusted extension (PostgreSQL 13+): the database owner,
-- shop_owner, may create it without being a superuser, so this migration
-- installs it in every database it runs on, the test database included.
-- Its functions are executable by PUBLIC, shop_app among them.
CREATE EXTENSION pgcrypto;
