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
UPDATE orders_payment AS p
SET gateway_asked_at = now(),
    gateway_asks = p.gateway_asks + 1
FROM orders_order AS o
WHERE o.id = p.order_id
  AND p.id IN (
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
      FOR UPDATE OF c SKIP LOCKED)
RETURNING p.order_id, o.total, o.created_at, o.payment_reference
