-- The fake gateway writes down a charge or a refund, unless one of the same
-- kind already exists for the reference. A concurrent duplicate waits on the
-- unique index until the first commits, then returns no row: the caller
-- reads the first one's answer instead (fake_gateway/entry_get_v01.sql).
INSERT INTO orders_fake_gateway_ledger
    (kind, reference, outcome, amount, gateway_reference, mode)
VALUES (%(kind)s, %(reference)s, %(outcome)s, %(amount)s,
        %(gateway_reference)s, %(mode)s)
ON CONFLICT ON CONSTRAINT orders_fake_gateway_ledger_once_per_reference
DO NOTHING
RETURNING outcome, amount, gateway_reference, mode
