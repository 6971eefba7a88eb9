-- The keys still in use for tax ids other than the current one: what
-- rotate_field_keys has left to do, and which keys may not yet be removed.
SELECT DISTINCT tax_id_key_id
FROM accounts_customer
WHERE tax_id_key_id <> %(current_key_id)s
ORDER BY tax_id_key_id
