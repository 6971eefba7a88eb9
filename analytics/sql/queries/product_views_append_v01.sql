-- A batch of buffered product views into the outbox, in one statement: each
-- view's user mapped to the customer they are (if any), and the views
-- handed to shop_outbox_append, which numbers them per product and skips a
-- view it already holds (its event_id is the view's id). %(views)s is the
-- JSON array of the buffer's entries, in the order they were recorded.
SELECT shop_outbox_append(COALESCE(jsonb_agg(jsonb_build_object(
           'event_id', v.id,
           'type', 'product.viewed',
           'aggregate_type', 'product',
           'aggregate_id', v.product_id,
           'customer_id', c.id,
           'occurred_at', v.at,
           'payload', jsonb_build_object('product_id', v.product_id))
       ORDER BY v.ord), '[]'::jsonb))
FROM ROWS FROM (jsonb_to_recordset(%(views)s::jsonb) AS (
         id uuid, product_id bigint, user_id bigint, at timestamptz))
     WITH ORDINALITY AS v (id, product_id, user_id, at, ord)
LEFT JOIN accounts_customer AS c ON c.user_id = v.user_id
