-- Undo ledger_history_v01.sql: forget what the gateway learnt from the
-- shop's books (the seed writes its history with the same mode).
DELETE FROM orders_fake_gateway_ledger WHERE mode = 'history';
