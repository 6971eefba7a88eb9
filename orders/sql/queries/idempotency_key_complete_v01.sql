-- Store the final response with the key, in the transaction that settled
-- its order, unless an answer is already final (recovery may have stored
-- one first): a completed key is never overwritten. No row back means it
-- was already final.
UPDATE orders_idempotency_key
SET status = 'completed',
    response_status = %(status)s,
    response_body = %(body)s::jsonb,
    updated_at = now()
WHERE id = %(key_id)s AND status = 'in_progress'
