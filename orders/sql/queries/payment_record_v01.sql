-- Write down what is known of an order's charge, in one statement: lock the
-- order, record the answer, and owe the refund of a capture that finds the
-- order already released (as refund_owe_v02.sql does), so that the capture
-- and the promise to give it back commit together. Both rows are built
-- from the locked order's row, so neither is written before the lock is
-- held, and a release that held it first is seen: the lock reads the
-- order's newest version. The order's status comes back.
--
-- One charge row per order (orders_payment_one_charge_per_order), which
-- only ever moves towards certainty; a later, surer answer replaces a
-- vaguer one, never the reverse:
--   unknown       the gateway did not answer; it may have captured
--   not_captured  asked by reference, the gateway had no charge
--   declined      the gateway refused the card
--   captured      the gateway took the money: final, whoever learns it
-- So checkout's phase 2 and recovery may both write, in any order, and the
-- row ends with the best answer either had. The amount comes with the
-- answer: a capture found by asking the gateway is for what the gateway
-- says it took, which is what a refund must give back. (The same rules as
-- the statement it replaced, which ran after a lock of its own.)
--
-- Checkout runs it alone, in autocommit, a transaction of its own with the
-- customer's context riding in it (shop/db_context.py:customer_statement;
-- the lock is LATERAL to the settings for the reason cart_lock_v01.sql
-- gives), and only when payment_record_first_v01.sql wrote nothing.
-- Recovery runs it inside its job's transaction, with no settings to set.
WITH locked AS (
    SELECT o.id, o.status
    FROM (SELECT count(set_config(name, value, true)) AS settings
          FROM unnest(%(setting_names)s::text[], %(setting_values)s::text[])
              AS setting (name, value)) AS context,
         LATERAL (SELECT id, status FROM orders_order
                  WHERE context.settings IS NOT NULL AND id = %(order_id)s
                  FOR UPDATE) AS o
), charge AS (
    INSERT INTO orders_payment AS p
        (order_id, amount, status, gateway_reference, created_at)
    SELECT id, %(amount)s, %(status)s, %(gateway_reference)s, now() FROM locked
    ON CONFLICT (order_id)
        WHERE status IN ('unknown', 'not_captured', 'declined', 'captured')
    DO UPDATE SET status = EXCLUDED.status,
                  amount = EXCLUDED.amount,
                  gateway_reference = EXCLUDED.gateway_reference
    WHERE array_position(ARRAY['unknown', 'not_captured', 'declined', 'captured'],
                         EXCLUDED.status)
        > array_position(ARRAY['unknown', 'not_captured', 'declined', 'captured'],
                         p.status)
), refund AS (
    INSERT INTO orders_payment AS p
        (order_id, amount, status, gateway_reference, created_at)
    SELECT id, %(amount)s, 'refund_pending', '', now() FROM locked
    WHERE locked.status = 'failed' AND %(status)s = 'captured'
    ON CONFLICT (order_id)
        WHERE status IN ('refund_pending', 'refunded', 'refund_failed')
    DO NOTHING
)
SELECT status FROM locked
