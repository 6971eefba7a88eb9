-- Version 2 of orders/sql/procedures/release_stale_reservations_v01.sql: the
-- same batches, each opened in the background-job context that row-level
-- security asks for (shop/sql/rls/row_level_security_v01.sql). Without it
-- the SELECT below would see no order at all. Transaction-local settings
-- end with each COMMIT, so the context is set again at the top of every
-- batch, like the lock timeout. The procedure acts as a job, never as a
-- customer or staff: it clears those settings explicitly.
--
-- Release the stock held by checkouts that never finished (a crash between
-- phase 1 and phase 3), a batch at a time, committing after each batch so
-- locks are short and a long backlog never becomes one huge transaction.
-- A PROCEDURE, not a FUNCTION, because only procedures may COMMIT; CALL it
-- outside a transaction block.
CREATE PROCEDURE orders_release_stale_reservations(
    p_older_than interval,
    p_batch_size integer DEFAULT 100,
    INOUT p_released integer DEFAULT 0
)
LANGUAGE plpgsql AS $$
DECLARE
    v_batch bigint[];
    v_order bigint;
BEGIN
    LOOP
        -- Each batch is a transaction of its own (COMMIT below), so the lock
        -- wait limit and the acting job are set again for every one.
        PERFORM set_config('lock_timeout', '5s', true),
                set_config('app.job', 'release_stale_reservations', true),
                set_config('app.customer_id', '', true),
                set_config('app.is_staff', 'off', true);
        -- SKIP LOCKED: an order a live checkout is finishing right now is
        -- left to it; another worker running this procedure takes other rows.
        -- Orders whose charge was captured are not released: recovery
        -- finishes those instead (orders/services/orders.py).
        SELECT array_agg(id ORDER BY id) INTO v_batch
        FROM (
            SELECT id FROM orders_order AS o
            WHERE status = 'pending' AND created_at < now() - p_older_than
              AND NOT EXISTS (
                  SELECT 1 FROM orders_payment AS p
                  WHERE p.order_id = o.id AND p.status = 'captured')
            ORDER BY id
            LIMIT p_batch_size
            FOR UPDATE SKIP LOCKED
        ) AS stale;
        EXIT WHEN v_batch IS NULL;

        PERFORM set_config('app.stock_reason', 'stale_release', true);
        -- Lock stock rows in (variant, warehouse) order, the order of
        -- orders/locks.py, so this and a checkout never wait in a cycle.
        PERFORM 1 FROM catalog_stock_level AS s
        WHERE (s.variant_id, s.warehouse_id) IN (
            SELECT l.variant_id, l.warehouse_id FROM orders_order_line AS l
            WHERE l.order_id = ANY (v_batch))
        ORDER BY s.variant_id, s.warehouse_id
        FOR UPDATE;

        -- One UPDATE per order, so the ledger trigger can tag each movement
        -- with the order it belongs to.
        FOREACH v_order IN ARRAY v_batch LOOP
            PERFORM set_config('app.order_id', v_order::text, true);
            UPDATE catalog_stock_level AS s
            SET reserved = s.reserved - l.quantity
            FROM orders_order_line AS l
            WHERE l.order_id = v_order
              AND s.variant_id = l.variant_id AND s.warehouse_id = l.warehouse_id;
        END LOOP;

        -- A coupon use counted for an order that never got paid is returned.
        UPDATE orders_coupon AS c
        SET times_used = c.times_used - used.n
        FROM (
            SELECT coupon_id, count(*) AS n FROM orders_coupon_redemption
            WHERE order_id = ANY (v_batch) GROUP BY coupon_id
        ) AS used
        WHERE c.id = used.coupon_id;
        DELETE FROM orders_coupon_redemption WHERE order_id = ANY (v_batch);

        UPDATE orders_order SET status = 'failed' WHERE id = ANY (v_batch);
        p_released := p_released + cardinality(v_batch);
        COMMIT;
    END LOOP;
END;
$$;
