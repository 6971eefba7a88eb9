-- Encrypt a customer's tax id with the current key (shop/crypto.py).
-- The plaintext and the key arrive as parameters and leave only as
-- ciphertext: neither is stored, and the key id says which key to ask for
-- when reading it back.
UPDATE accounts_customer
SET tax_id_encrypted = pgp_sym_encrypt(%(tax_id)s, %(key)s),
    tax_id_key_id = %(key_id)s
WHERE id = %(customer_id)s
