-- The first answer on file for a pending order, which is what checkout's
-- phase 2 nearly always writes, in a statement that plans in half the time
-- of payment_record_v01.sql: lock the order and, only if it is still
-- pending and holds no charge row yet, write the charge. Anything else (an
-- answer already on file, an order released meanwhile, and the refund that
-- may come with it) is left to payment_record_v01.sql, which the caller
-- runs next when this one wrote nothing. Comes back: whether it wrote.
-- Planning is most of what a short statement costs here: row-level
-- security plans each table's policies for each action, and DO NOTHING
-- has one action where DO UPDATE has three.
WITH locked AS (
    SELECT o.id, o.status
    FROM (SELECT count(set_config(name, value, true)) AS settings
          FROM unnest(%(setting_names)s::text[], %(setting_values)s::text[])
              AS setting (name, value)) AS context,
         LATERAL (SELECT id, status FROM orders_order
                  WHERE context.settings IS NOT NULL AND id = %(order_id)s
                  FOR UPDATE) AS o
), written AS (
    INSERT INTO orders_payment
        (order_id, amount, status, gateway_reference, created_at)
    SELECT id, %(amount)s, %(status)s, %(gateway_reference)s, now() FROM locked
    WHERE locked.status = 'pending'
    ON CONFLICT (order_id)
        WHERE status IN ('unknown', 'not_captured', 'declined', 'captured')
    DO NOTHING
    RETURNING id
)
SELECT EXISTS (SELECT FROM written)
