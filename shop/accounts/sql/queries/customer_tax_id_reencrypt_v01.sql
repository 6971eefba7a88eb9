-- Move one batch of tax ids from an old key to the current one
-- (rotate_field_keys). Decryption and encryption happen in this one
-- statement, so the plaintext never leaves the server. SKIP LOCKED lets a
-- customer who is changing their tax id right now keep their lock: that row
-- is picked up by a later batch or is rewritten under the current key anyway.
UPDATE accounts_customer
SET tax_id_encrypted = pgp_sym_encrypt(
        pgp_sym_decrypt(tax_id_encrypted, %(old_key)s), %(new_key)s
    ),
    tax_id_key_id = %(new_key_id)s
WHERE id IN (
    SELECT id
    FROM accounts_customer
    WHERE tax_id_key_id = %(old_key_id)s
    ORDER BY id
    LIMIT %(batch_size)s
    FOR UPDATE SKIP LOCKED
)
