-- Claim a batch of charges that recovery asks the gateway about now: the
-- charge's answer on file is one of %(charge_statuses)s, its order is
-- %(order_status)s and was placed in the window, and the charge is due:
-- never asked, or asked longer ago than the wait its asks have earned, the
-- first wait %(backoff)s and each one after it twice as long, up to
-- %(backoff_max)s. An answer that stays in doubt costs a few lookups a
-- day, not one per run.
--
-- Claiming marks the rows asked, and the caller commits it before any
-- call to the gateway: of two recovery runs at once, the second skips a
-- row the first has locked (SKIP LOCKED) or, once the first committed,
-- rechecks the updated row and finds it no longer due, so no order is
-- asked about twice at the same time.
--
-- The batch is a MATERIALIZED CTE, so it is computed exactly once. As
-- `p.id IN (SELECT ... LIMIT ...)` it would be part of the join the UPDATE
-- plans, and a plan may scan it more than once (as a join's inner side, or
-- to recheck a row updated meanwhile): each scan skips what is locked by
-- then and can return other ids, and more than the LIMIT are claimed.
WITH due AS MATERIALIZED (
    SELECT c.id
    FROM orders_payment AS c
    JOIN orders_order AS co ON co.id = c.order_id
    WHERE co.status = %(order_status)s
      AND (%(placed_after)s::timestamptz IS NULL
           OR co.created_at >= %(placed_after)s::timestamptz)
      AND co.created_at < %(placed_before)s
      AND c.status = ANY (%(charge_statuses)s)
      AND (c.gateway_asked_at IS NULL
           OR c.gateway_asked_at
              + least(%(backoff)s * power(2, least(greatest(c.gateway_asks - 1, 0), 20)),
                      %(backoff_max)s)
              <= now())
    ORDER BY c.gateway_asked_at NULLS FIRST, c.id
    LIMIT %(batch_size)s
    FOR UPDATE OF c SKIP LOCKED
)
UPDATE orders_payment AS p
SET gateway_asked_at = now(),
    gateway_asks = p.gateway_asks + 1
FROM due, orders_order AS o
WHERE p.id = due.id
  AND o.id = p.order_id
RETURNING p.order_id, o.total, o.created_at, o.payment_reference
