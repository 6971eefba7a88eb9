-- Sell a pending order whose charge was captured, in one statement whatever
-- the number of its lines (orders/services/settle.py:order_settle): the
-- units it reserved leave the stock rows locked before it (orders/locks.py:
-- fewer on hand, fewer reserved), the order is paid, the cart lines it
-- bought in full are deleted, and its 201 is stored with its idempotency
-- key, which is still in progress while the order is pending: the answer
-- commits with the sale it reports. Comes back: the variants whose cart
-- lines were deleted, and whether the key took the answer.
--
-- A cart line that holds more than was bought (units added in another tab
-- while the payment was being taken, no cart lock held then) keeps them:
-- cart_decrement_v01.sql takes the bought units out of it, in a statement
-- of its own that runs only then. Deciding both here (MERGE, or a DELETE and
-- an UPDATE, as the checkout's earlier cart statement did) cost three times the planning:
-- row-level security plans the cart's policies once per action. The stock
-- ledger's labels ride along: its trigger runs at the end of the statement
-- (orders/sql/triggers/stock_ledger_v01.sql).
WITH label AS (
    SELECT set_config('app.order_id', %(order_id)s::text, true),
           set_config('app.stock_reason', 'sale', true)
), sold AS (
    UPDATE catalog_stock_level AS s
    SET quantity_on_hand = s.quantity_on_hand - d.quantity,
        reserved = s.reserved - d.quantity
    FROM unnest(%(stock_level_ids)s::bigint[], %(quantities)s::integer[])
            AS d (id, quantity),
         label
    WHERE s.id = d.id
), paid AS (
    UPDATE orders_order
    SET status = 'paid', paid_at = now()
    WHERE id = %(order_id)s
), bought_in_full AS (
    DELETE FROM orders_cart_item AS item
    USING unnest(%(variant_ids)s::bigint[], %(quantities)s::integer[])
        AS bought (variant_id, quantity)
    WHERE item.cart_id = (SELECT id FROM orders_cart
                          WHERE customer_id = %(customer_id)s)
      AND item.variant_id = bought.variant_id
      AND item.quantity <= bought.quantity
    RETURNING item.variant_id
), answered AS (
    UPDATE orders_idempotency_key
    SET status = 'completed',
        response_status = %(response_status)s,
        response_body = %(response_body)s::jsonb,
        updated_at = now()
    WHERE order_id = %(order_id)s AND status = 'in_progress'
    RETURNING id
)
SELECT ARRAY(SELECT variant_id FROM bought_in_full),
       EXISTS (SELECT FROM answered)
