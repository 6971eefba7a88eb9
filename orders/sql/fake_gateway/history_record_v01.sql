-- The gateway files the history it was given (orders/payments.py:
-- history_record), keeping any entry it already holds for the same kind and
-- reference, or under the same gateway id: a seed repeated with the same
-- seed number writes the same entries, which are there already.
INSERT INTO orders_fake_gateway_ledger
    (kind, reference, outcome, amount, gateway_reference, mode)
SELECT kind, reference, outcome, amount, gateway_reference, 'history'
FROM fake_gateway_history
ON CONFLICT DO NOTHING
