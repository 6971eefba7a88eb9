-- The gateway files the history it was given (orders/payments.py:
-- history_record), keeping any entry it already holds for the same kind and
-- reference: a seed repeated with the same seed number, after the seeded
-- tables were emptied without `seed --reset` (which forgets the history,
-- history_forget_v01.sql), writes the same entries, which are there
-- already. Any other conflict, a gateway id filed under another
-- reference, fails the seed's phase instead of being dropped in silence.
INSERT INTO orders_fake_gateway_ledger
    (kind, reference, outcome, amount, gateway_reference, mode)
SELECT kind, reference, outcome, amount, gateway_reference, 'history'
FROM fake_gateway_history
ON CONFLICT ON CONSTRAINT orders_fake_gateway_ledger_once_per_reference
DO NOTHING
