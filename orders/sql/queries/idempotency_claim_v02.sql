-- Claim an idempotency key, or learn that someone already has. Version 2; version
-- 1 ran in a transaction of its own: BEGIN,
-- the customer's context, this INSERT, COMMIT, four round trips. A single
-- statement in autocommit is a transaction of its own, and this one carries
-- the context (shop/db_context.py:customer_statement): the new row is built
-- from the settings' row, so set_config() has run before the row-level
-- security policies check it. One round trip, committed at once, so that a
-- concurrent duplicate sees the key. That duplicate blocks on the unique
-- index until the first claim commits, then falls to DO NOTHING and
-- returns no row: exactly one request wins.
INSERT INTO orders_idempotency_key
    (customer_id, key, request_fingerprint, status, created_at, updated_at)
SELECT %(customer_id)s, %(key)s, %(fingerprint)s, 'in_progress', now(), now()
FROM (SELECT count(set_config(name, value, true)) AS settings
      FROM unnest(%(setting_names)s::text[], %(setting_values)s::text[])
          AS setting (name, value)) AS context
ON CONFLICT ON CONSTRAINT orders_idempotency_key_per_customer DO NOTHING
RETURNING id
