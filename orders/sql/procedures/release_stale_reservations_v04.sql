-- Version 4 of orders/sql/procedures/release_stale_reservations_v03.sql:
-- the same batches, but the batch is checked again, in a statement of its
-- own, after its orders are locked. v03 decided from the batch SELECT
-- alone, and that SELECT reads the payment rows in the snapshot taken when
-- it started: a capture recorded after that moment, but before the SELECT
-- reached and locked its order, was invisible to it. Recording a charge
-- locks the order without changing it, so the lock found nothing to
-- recheck, and v03 released an order whose charge had just been captured.
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
        -- Only an order whose charge is on file as not captured is a
        -- candidate: declined by the gateway, or not found when recovery
        -- asked it by the order's reference. An order with no answer on
        -- file, or an unknown one, may have been paid for; recovery asks the
        -- gateway first (orders/services/orders.py:checkout_recover).
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

        -- Lock stock rows in (variant, warehouse) order, the order of
        -- orders/locks.py, so this and a checkout never wait in a cycle.
        PERFORM 1 FROM catalog_stock_level AS s
        WHERE (s.variant_id, s.warehouse_id) IN (
            SELECT l.variant_id, l.warehouse_id FROM orders_order_line AS l
            WHERE l.order_id = ANY (v_batch))
        ORDER BY s.variant_id, s.warehouse_id
        FOR UPDATE;

        -- The batch again, in a new statement and so a new snapshot (READ
        -- COMMITTED): a charge recorded before the orders were locked is
        -- visible now, and one recorded later waits for this COMMIT, since
        -- whoever records a charge locks its order first
        -- (orders/services/settle.py:payment_record), and then finds the
        -- order failed and owes the refund. The rows only move towards
        -- certainty, so an order that is still not captured here is not.
        SELECT array_agg(o.id ORDER BY o.id) INTO v_batch
        FROM orders_order AS o
        WHERE o.id = ANY (v_batch)
          AND o.status = 'pending'
          AND EXISTS (
              SELECT 1 FROM orders_payment AS p
              WHERE p.order_id = o.id
                AND p.status IN ('declined', 'not_captured'));

        IF v_batch IS NOT NULL THEN
            PERFORM set_config('app.stock_reason', 'stale_release', true);
            -- One UPDATE per order, so the ledger trigger can tag each
            -- movement with the order it belongs to.
            FOREACH v_order IN ARRAY v_batch LOOP
                PERFORM set_config('app.order_id', v_order::text, true);
                UPDATE catalog_stock_level AS s
                SET reserved = s.reserved - l.quantity
                FROM orders_order_line AS l
                WHERE l.order_id = v_order
                  AND s.variant_id = l.variant_id
                  AND s.warehouse_id = l.warehouse_id;
            END LOOP;

            -- A coupon use counted for an order that never got paid is
            -- returned.
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
        END IF;
        -- A batch emptied by the recheck still ends here: its orders are
        -- captured now, and the next batch's SELECT, a new snapshot, no
        -- longer takes them.
        COMMIT;
    END LOOP;
END;
$$;
