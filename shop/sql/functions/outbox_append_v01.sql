-- Append events to the outbox, numbering each aggregate's events 1, 2, 3 ...
-- without gaps (shop/models.py). Every writer calls it: the triggers of
-- orders/sql/triggers/outbox_v01.sql with the rows of one statement, the
-- product-view flush with a batch of views. `p_events` is a JSON array of
-- objects: type, aggregate_type, aggregate_id, customer_id (or null),
-- payload, and optionally occurred_at (the transaction's time otherwise)
-- and event_id (a new random one otherwise). An event whose event_id the
-- outbox already holds is skipped, before it takes a number: the view
-- flush hands its views over again if it died between its COMMIT and
-- trimming its buffer (analytics/product_views.py), and each counts once.
-- That check reads the outbox, which row-level security shows to a job
-- context only: a caller that passes event ids must act as a job (the flush
-- does); the unique event_id still refuses a duplicate from any other.
--
-- Set-based, one statement whatever the batch: the aggregates' counters
-- move by the number of their events in this batch, and each event takes
-- its place in that range, in the order the array gives. The counter's row
-- lock (held to COMMIT) serializes two transactions writing events for one
-- aggregate, so sequence order is commit order: the relay never finds
-- sequence 5 committed while 4 is not. The rows are taken in one fixed order
-- (aggregate type, then id), so two batches cannot deadlock on them.
--
-- Nothing here for the seed: its COPY as shop_loader loads history, which
-- is not news, and every trigger returns before calling this
-- (shop_outbox_enabled()).
--
-- PL/pgSQL, not LANGUAGE sql, for its plan: PL/pgSQL keeps a statement's
-- plan for the session, where a SQL function with a SET clause is planned
-- again at every call. A checkout calls this five times; the switch took
-- the outbox's cost per checkout from about 3 ms to about 1.5 ms
-- (python -m bench.checkout, 2026-12-06: the app 17.4 -> 15.4 ms at p50).
--
-- SECURITY DEFINER: it runs as its owner, shop_owner, so shop_app needs no
-- right on the two tables to append (shop/sql/rls/outbox_v01.sql revokes
-- them): a stray INSERT of the app cannot forge an event or take an
-- aggregate's next number, and only this function moves the counters. Its
-- search_path is pinned, as a definer's must be, so that no object of the
-- caller's choosing stands in for a table or function it names.
CREATE FUNCTION shop_outbox_append(p_events jsonb) RETURNS void
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, public AS $$
BEGIN
    WITH batch AS (
        SELECT COALESCE(e.event_id, gen_random_uuid()) AS event_id,
               e.type, e.aggregate_type, e.aggregate_id, e.customer_id,
               COALESCE(e.occurred_at, now()) AS occurred_at, e.payload, e.ord
        FROM ROWS FROM (jsonb_to_recordset(p_events) AS (
                 event_id uuid, type text, aggregate_type text,
                 aggregate_id bigint, customer_id bigint,
                 occurred_at timestamptz, payload jsonb))
             WITH ORDINALITY AS e (event_id, type, aggregate_type, aggregate_id,
                                   customer_id, occurred_at, payload, ord)
        WHERE e.event_id IS NULL
           OR NOT EXISTS (SELECT FROM shop_outbox_event AS o
                          WHERE o.event_id = e.event_id)
    ), per_aggregate AS (
        SELECT aggregate_type, aggregate_id, count(*) AS events
        FROM batch
        GROUP BY aggregate_type, aggregate_id
    ), counters AS (
        INSERT INTO shop_outbox_sequence AS s
            (aggregate_type, aggregate_id, last_sequence)
        SELECT aggregate_type, aggregate_id, events
        FROM per_aggregate
        ORDER BY aggregate_type, aggregate_id
        ON CONFLICT (aggregate_type, aggregate_id)
        DO UPDATE SET last_sequence = s.last_sequence + EXCLUDED.last_sequence
        RETURNING aggregate_type, aggregate_id, last_sequence
    )
    INSERT INTO shop_outbox_event
        (event_id, type, aggregate_type, aggregate_id, sequence, customer_id,
         occurred_at, payload)
    SELECT b.event_id, b.type, b.aggregate_type, b.aggregate_id,
           c.last_sequence - p.events
               + row_number() OVER (PARTITION BY b.aggregate_type, b.aggregate_id
                                    ORDER BY b.ord),
           b.customer_id, b.occurred_at, b.payload
    FROM batch AS b
    JOIN per_aggregate AS p USING (aggregate_type, aggregate_id)
    JOIN counters AS c USING (aggregate_type, aggregate_id)
    ORDER BY b.ord;
END;
$$;

REVOKE EXECUTE ON FUNCTION shop_outbox_append(jsonb) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION shop_outbox_append(jsonb) TO shop_app;

-- Whether this session's changes are events. The seed's COPY runs as
-- shop_loader and loads a history that happened before the shop opened;
-- the outbox carries what happens in the shop.
CREATE FUNCTION shop_outbox_enabled() RETURNS boolean
LANGUAGE sql STABLE PARALLEL SAFE
AS $$ SELECT current_user <> 'shop_loader' $$;
