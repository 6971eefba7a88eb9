-- Apply many stock changes in one statement, whatever the number of lines:
-- the deltas arrive as parallel arrays and unnest() turns them into a table
-- to join. The rows were locked (in order) just before. In version 2
-- the stock ledger's labels (the order, the reason)
-- ride in the statement they label, instead of a set_config() round trip
-- before it; the ledger's trigger reads them at the statement's end
-- (orders/sql/triggers/stock_ledger_v01.sql).
WITH label AS (
    SELECT set_config('app.order_id', %(order_id)s::text, true),
           set_config('app.stock_reason', %(reason)s, true)
)
UPDATE catalog_stock_level AS s
SET quantity_on_hand = s.quantity_on_hand + d.on_hand_delta,
    reserved = s.reserved + d.reserved_delta
FROM unnest(%(ids)s::bigint[], %(on_hand)s::integer[], %(reserved)s::integer[])
        AS d (id, on_hand_delta, reserved_delta),
     label
WHERE s.id = d.id
