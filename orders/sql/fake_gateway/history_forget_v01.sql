-- The gateway forgets the history it was given (orders/payments.py:
-- history_forget), after `seed --reset` emptied the orders it describes,
-- and the refunds made of that history since, which carry its mode: a
-- refund inherits the mode of the charge it gives back.
DELETE FROM orders_fake_gateway_ledger WHERE mode = 'history'
