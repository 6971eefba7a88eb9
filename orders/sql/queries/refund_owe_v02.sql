-- Record that a captured charge must be given back, in the transaction that
-- decides it (a cancel, a checkout that expired after the capture, a
-- capture found on an order that cannot be finished). The row is the
-- promise: whoever makes the refund through the gateway afterwards turns it
-- into 'refunded' (or 'refund_failed' if the gateway refuses it), and
-- recovery retries the rows still pending. One refund per order
-- (orders_payment_one_refund_per_order): asking twice changes nothing, and
-- a refund that failed is not owed again. Version 1 did not know
-- 'refund_failed'.
INSERT INTO orders_payment AS p (order_id, amount, status, gateway_reference, created_at)
VALUES (%(order_id)s, %(amount)s, 'refund_pending', '', now())
ON CONFLICT (order_id) WHERE status IN ('refund_pending', 'refunded', 'refund_failed')
DO NOTHING
