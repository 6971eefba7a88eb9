-- The rest of phase 1 in one statement, whatever the number of lines: the
-- order's lines with their price and name snapshots, the units they take
-- reserved on the stock rows locked before them (orders/locks.py), and the
-- idempotency key pointed at the order. The order was inserted by the
-- statement before: row-level security checks each line against it, and a
-- row inserted by this same statement would be invisible to that check.
-- The stock ledger's labels ride along: its trigger runs at the end of the
-- statement (orders/sql/triggers/stock_ledger_v01.sql). The rows are locked
-- and were checked; if a bug ever reserved too much anyway, the CHECK
-- (reserved <= quantity_on_hand) refuses.
WITH label AS (
    SELECT set_config('app.order_id', %(order_id)s::text, true),
           set_config('app.stock_reason', 'reserve', true)
), line AS (
    INSERT INTO orders_order_line
        (order_id, variant_id, warehouse_id, sku, product_name, unit_price, quantity)
    SELECT %(order_id)s, l.*
    FROM unnest(%(variant_ids)s::bigint[], %(warehouse_ids)s::bigint[],
                %(skus)s::text[], %(product_names)s::text[],
                %(unit_prices)s::numeric[], %(quantities)s::integer[])
        AS l (variant_id, warehouse_id, sku, product_name, unit_price, quantity)
), reserved AS (
    UPDATE catalog_stock_level AS s
    SET reserved = s.reserved + d.quantity
    FROM unnest(%(stock_level_ids)s::bigint[], %(quantities)s::integer[])
            AS d (id, quantity),
         label
    WHERE s.id = d.id
)
UPDATE orders_idempotency_key
SET order_id = %(order_id)s
WHERE id = %(key_id)s
