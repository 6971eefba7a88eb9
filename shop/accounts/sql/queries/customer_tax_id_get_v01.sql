-- Decrypt a customer's tax id if it is encrypted with the key offered.
-- The row's key id comes back either way: a row still on an older key is
-- decrypted by asking again with that key (customer_tax_id_get), so only
-- one key travels per query and the usual case takes one round trip.
SELECT tax_id_key_id,
       CASE WHEN tax_id_key_id = %(key_id)s
            THEN pgp_sym_decrypt(tax_id_encrypted, %(key)s)
       END AS tax_id
FROM accounts_customer
WHERE id = %(customer_id)s
