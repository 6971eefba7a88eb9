-- Version 3 of orders/sql/procedures/release_stale_reservations_v02.sql:
-- the same batches in the same job context, but a stale checkout is
-- released only when its charge is known not to have been captured. v02
-- released every stale order without a captured payment row, including
-- those whose gateway call had failed or timed out, or whose process died
-- before writing the answer down: the customer could have paid for an
-- order that was then released. Each order has one charge row
-- (orders_payment_one_charge_per_order), so "declined or not_captured"
-- also means "not captured".
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
        -- Only an order whose charge is on file as not captured is released:
        -- declined by the gateway, or not found when recovery asked it by
        -- the order's reference. An order with no answer on file, or an
        -- unknown one, may have been paid for; recovery asks the gateway
        -- first (orders/services/orders.py:checkout_recover), from Python,
        -- because a gateway call never runs in a transaction holding locks.
        SELECT array_agg(id ORDER BY id) INTO v_batch
        FROM (
            SELECT id FROM orders_order AS o
            WHERE status = 'pending' AND created_at < now() - p_older_than
              AND EXISTS (
                  SELECT 1 FROM orders_payment AS p
                  WHERE p.order_id = o.id
                    AND p.status IN ('declined', 'not_captured'))
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
