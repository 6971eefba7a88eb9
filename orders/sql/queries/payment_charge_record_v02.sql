-- Write down what is known of an order's charge: one row per order
-- (orders_payment_one_charge_per_order), which only ever moves towards
-- certainty. A later, surer answer replaces a vaguer one; never the reverse:
--   unknown       the gateway did not answer; it may have captured
--   not_captured  asked by reference, the gateway had no charge
--   declined      the gateway refused the card
--   captured      the gateway took the money: final, whoever learns it
-- So checkout's phase 2 and recovery may both write, in any order, and the
-- row ends with the best answer either had. Version 2 of
-- payment_charge_record_v01.sql: the amount comes with the answer, since a
-- capture found by asking the gateway is for what the gateway says it
-- took, which is what a refund must give back, whatever the order's total.
INSERT INTO orders_payment AS p (order_id, amount, status, gateway_reference, created_at)
VALUES (%(order_id)s, %(amount)s, %(status)s, %(gateway_reference)s, now())
ON CONFLICT (order_id)
    WHERE status IN ('unknown', 'not_captured', 'declined', 'captured')
DO UPDATE SET status = EXCLUDED.status,
              amount = EXCLUDED.amount,
              gateway_reference = EXCLUDED.gateway_reference
WHERE array_position(ARRAY['unknown', 'not_captured', 'declined', 'captured'],
                     EXCLUDED.status)
    > array_position(ARRAY['unknown', 'not_captured', 'declined', 'captured'],
                     p.status)
