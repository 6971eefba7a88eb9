-- The fake gateway's answer on file for a reference, of one kind.
SELECT outcome, amount, gateway_reference, mode
FROM orders_fake_gateway_ledger
WHERE kind = %(kind)s AND reference = %(reference)s
