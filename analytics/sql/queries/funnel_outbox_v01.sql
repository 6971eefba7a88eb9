-- The funnel in SQL, over the events the outbox holds (analytics/event_log.py:
-- funnel_sql; the same question as funnel_pipeline asks MongoDB).
--
-- viewed   each (customer, product) a signed-in customer viewed in the
--          window, with the first view
-- carted   those pairs with a cart add of the product at or after it: the
--          first one
-- ordered  those pairs with an order holding the product at or after that
--
-- Each step is a join with GROUP BY, so the planner can hash the window's
-- events once per step instead of searching them again for every pair.
-- Every step's events lie in the window, so only the window's are read.
--
-- Times are compared at MongoDB's precision, milliseconds (BSON dates hold
-- no more; the relay's writes drop the rest): a cart add 0.5 ms before the
-- view is "after" it in the event log, and must be here too, or the two
-- answers would differ. Truncating cannot move an event across the
-- window's bounds, which are whole days.
WITH events AS (
    SELECT type, customer_id, aggregate_id, payload,
           date_trunc('milliseconds', occurred_at) AS at
    FROM shop_outbox_event
    WHERE type IN ('product.viewed', 'cart.item_added', 'order.placed')
      AND customer_id IS NOT NULL
      AND occurred_at >= %(since)s AND occurred_at < %(until)s
),
viewed AS (
    SELECT customer_id, aggregate_id AS product_id, min(at) AS viewed_at
    FROM events
    WHERE type = 'product.viewed'
    GROUP BY customer_id, aggregate_id
),
carted AS (
    SELECT v.customer_id, v.product_id, min(e.at) AS carted_at
    FROM viewed AS v
    JOIN events AS e
      ON e.type = 'cart.item_added'
     AND e.customer_id = v.customer_id
     AND (e.payload ->> 'product_id')::bigint = v.product_id
     AND e.at >= v.viewed_at
    GROUP BY v.customer_id, v.product_id
),
ordered AS (
    SELECT c.customer_id, c.product_id
    FROM carted AS c
    JOIN events AS e
      ON e.type = 'order.placed'
     AND e.customer_id = c.customer_id
     AND e.at >= c.carted_at
     -- Containment: some line of the order is this product.
     AND e.payload -> 'lines' @> jsonb_build_array(
             jsonb_build_object('product_id', c.product_id))
    GROUP BY c.customer_id, c.product_id
)
SELECT (SELECT count(*) FROM viewed) AS viewed,
       (SELECT count(*) FROM carted) AS carted,
       (SELECT count(*) FROM ordered) AS ordered;
