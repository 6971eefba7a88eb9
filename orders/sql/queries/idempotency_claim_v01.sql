-- Claim an idempotency key, or learn that someone already has. A concurrent
-- duplicate blocks on the unique index until the first claim commits, then
-- falls to DO NOTHING and returns no row: exactly one request wins.
INSERT INTO orders_idempotency_key
    (customer_id, key, request_fingerprint, status, created_at, updated_at)
VALUES (%(customer_id)s, %(key)s, %(fingerprint)s, 'in_progress', now(), now())
ON CONFLICT ON CONSTRAINT orders_idempotency_key_per_customer DO NOTHING
RETURNING id
