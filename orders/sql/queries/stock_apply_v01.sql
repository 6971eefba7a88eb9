-- Apply many stock changes in one statement, whatever the number of cart
-- lines: the deltas arrive as parallel arrays and unnest() turns them into
-- a table to join. The rows were locked (in order) just before.
UPDATE catalog_stock_level AS s
SET quantity_on_hand = s.quantity_on_hand + d.on_hand_delta,
    reserved = s.reserved + d.reserved_delta
FROM unnest(%(ids)s::bigint[], %(on_hand)s::integer[], %(reserved)s::integer[])
    AS d (id, on_hand_delta, reserved_delta)
WHERE s.id = d.id
