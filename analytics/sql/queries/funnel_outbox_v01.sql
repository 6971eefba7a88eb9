-- The funnel in SQL, over the events the outbox holds (analytics/event_log.py:
-- funnel_sql; the same question as funnel_pipeline asks MongoDB).
--
-- One row per (customer, product) a signed-in customer viewed in the window,
-- with the first view; then, per pair, the first cart add of that product
-- after the view, and the first order holding it after that add. LATERAL
-- subqueries read "the first later event" directly, where the pipeline
-- has to group the customer's events and take a minimum.
--
-- Times are compared at MongoDB's precision, milliseconds (BSON dates hold
-- no more; the relay's writes drop the rest): a cart add 0.5 ms before the
-- view is "after" it in the event log, and must be here too, or the two
-- answers would differ.
WITH events AS (
    SELECT type, customer_id, aggregate_id, payload,
           date_trunc('milliseconds', occurred_at) AS at
    FROM shop_outbox_event
),
viewed AS (
    SELECT customer_id, aggregate_id AS product_id, min(at) AS viewed_at
    FROM events
    WHERE type = 'product.viewed'
      AND customer_id IS NOT NULL
      AND at >= %(since)s AND at < %(until)s
    GROUP BY customer_id, aggregate_id
)
SELECT count(*) AS viewed,
       count(carted.at) AS carted,
       count(ordered.at) AS ordered
FROM viewed AS v
LEFT JOIN LATERAL (
    SELECT min(e.at) AS at
    FROM events AS e
    WHERE e.type = 'cart.item_added'
      AND e.customer_id = v.customer_id
      AND (e.payload ->> 'product_id')::bigint = v.product_id
      AND e.at >= v.viewed_at AND e.at < %(until)s
) AS carted ON true
LEFT JOIN LATERAL (
    SELECT min(e.at) AS at
    FROM events AS e
    WHERE e.type = 'order.placed'
      AND e.customer_id = v.customer_id
      -- Containment: some line of the order is this product.
      AND e.payload -> 'lines' @> jsonb_build_array(
              jsonb_build_object('product_id', v.product_id))
      AND e.at >= carted.at AND e.at < %(until)s
) AS ordered ON true;
