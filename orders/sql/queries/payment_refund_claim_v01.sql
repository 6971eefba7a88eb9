-- Claim a batch of owed refunds that recovery makes now: promised longer
-- ago than %(owed_before)s (a younger one is still being made by the
-- request that owed it), and due, with the same growing waits as a charge
-- recovery asks about (payment_ask_claim_v01.sql), so a gateway that does
-- not answer is not called about every refund on every run. Committed
-- before the calls, so two runs at once never make the same refund call.
-- The batch is a MATERIALIZED CTE, run once, for the reason
-- payment_ask_claim_v01.sql gives: the LIMIT holds.
WITH due AS MATERIALIZED (
    SELECT r.id
    FROM orders_payment AS r
    WHERE r.status = 'refund_pending'
      AND r.created_at < %(owed_before)s
      AND (r.gateway_asked_at IS NULL
           OR r.gateway_asked_at
              + least(%(backoff)s * power(2, least(greatest(r.gateway_asks - 1, 0), 20)),
                      %(backoff_max)s)
              <= now())
    ORDER BY r.gateway_asked_at NULLS FIRST, r.id
    LIMIT %(batch_size)s
    FOR UPDATE OF r SKIP LOCKED
)
UPDATE orders_payment AS p
SET gateway_asked_at = now(),
    gateway_asks = p.gateway_asks + 1
FROM due
WHERE p.id = due.id
RETURNING p.order_id
