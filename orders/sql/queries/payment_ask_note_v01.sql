-- Recovery is about to ask the gateway about pending checkouts that wrote
-- no answer at all: the process died between phase 1 and the gateway's
-- answer, or the call is still out. Each gets a charge row saying just
-- that, 'unknown', so that when the gateway was asked about it, and how
-- often, can be kept on the row (payment_ask_claim_v01.sql). 'unknown' is
-- the vaguest answer there is: the checkout's own record, if it comes,
-- replaces it (payment_record_v01.sql), and the release procedure
-- never takes an order on it. In id order, so that two runs inserting at
-- once wait for each other in one direction only.
INSERT INTO orders_payment (order_id, amount, status, gateway_reference, created_at)
SELECT o.id, o.total, 'unknown', '', now()
FROM orders_order AS o
WHERE o.status = 'pending'
  AND o.created_at < %(placed_before)s
  AND NOT EXISTS (
      SELECT 1 FROM orders_payment AS p
      WHERE p.order_id = o.id
        AND p.status IN ('unknown', 'not_captured', 'declined', 'captured'))
ORDER BY o.id
LIMIT %(batch_size)s
ON CONFLICT (order_id) WHERE status IN ('unknown', 'not_captured', 'declined', 'captured')
DO NOTHING
