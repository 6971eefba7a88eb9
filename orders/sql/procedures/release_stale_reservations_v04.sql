-- Version 4 of orders/sql/procedures/release_stale_reservations_v03.sql.
-- One change: the batch's products are locked, in id order, after its
-- stock rows and before its coupons.
--
-- Why: releasing a reservation can make a unit available again, and the
-- stock trigger that keeps catalog_product.in_stock then locks the product
-- (catalog/sql/triggers/product_in_stock_v01.sql). Checkout takes stock,
-- then (through the same trigger) products, then coupons; v03 took stock,
-- coupons, and only then products, one order at a time: a checkout holding
-- a product and waiting for a coupon, and this procedure holding the
-- coupon and waiting for the product, would deadlock, as would two orders
-- of one batch taking two products in opposite orders. Locked up front,
-- the products are taken in the global order (orders/locks.py), and the
-- trigger finds its locks already held.
--
-- v03's three changes stand: release only what the gateway says was not
-- captured, read the batch again once it is locked, and release each order
-- in a subtransaction of its own so one that fails is skipped and logged.
--
-- Release the stock held by checkouts that never finished (a crash between
-- phase 1 and phase 3), a batch at a time, committing after each batch so
-- locks are short and a long backlog never becomes one huge transaction.
-- A PROCEDURE, not a FUNCTION, because only procedures may COMMIT; CALL it
-- outside a transaction block.
CREATE PROCEDURE orders_release_stale_reservations(
    p_older_than interval,
    p_batch_size integer DEFAULT 50,
    INOUT p_released integer DEFAULT 0
)
LANGUAGE plpgsql AS $$
DECLARE
    v_batch bigint[];
    v_order bigint;
    -- Orders that failed to release in this CALL: later batches leave
    -- them out, and the next CALL tries them again.
    v_skipped bigint[] := '{}';
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
              AND o.id <> ALL (v_skipped)
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
        -- Then the products those rows belong to, in id order: the stock
        -- trigger locks a product whose availability a release changes,
        -- and it must find the lock taken here, before the coupons.
        PERFORM 1 FROM catalog_product AS p
        WHERE p.id IN (
            SELECT v.product_id
            FROM orders_order_line AS l
            JOIN catalog_product_variant AS v ON v.id = l.variant_id
            WHERE l.order_id = ANY (v_batch))
        ORDER BY p.id
        FOR UPDATE;
        -- Then the batch's coupons, in id order: after the stock, as
        -- checkout takes them, and in one order for two runs at once, since
        -- the loop below returns their uses order by order.
        PERFORM 1 FROM orders_coupon AS c
        WHERE c.id IN (
            SELECT r.coupon_id FROM orders_coupon_redemption AS r
            WHERE r.order_id = ANY (v_batch))
        ORDER BY c.id
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

        PERFORM set_config('app.stock_reason', 'stale_release', true);
        -- One order at a time, so the ledger trigger can tag each movement
        -- with the order it belongs to, and so one order that fails undoes
        -- only its own changes. Each block is a subtransaction: the default
        -- batch of 50 stays under the 64 a backend caches, past which every
        -- other session's snapshot checks get slower until the COMMIT.
        FOREACH v_order IN ARRAY coalesce(v_batch, '{}') LOOP
            BEGIN
                PERFORM set_config('app.order_id', v_order::text, true);
                UPDATE catalog_stock_level AS s
                SET reserved = s.reserved - l.quantity
                FROM orders_order_line AS l
                WHERE l.order_id = v_order
                  AND s.variant_id = l.variant_id
                  AND s.warehouse_id = l.warehouse_id;
                -- A coupon use counted for an order that never got paid is
                -- returned.
                UPDATE orders_coupon AS c
                SET times_used = c.times_used - 1
                FROM orders_coupon_redemption AS r
                WHERE r.order_id = v_order AND c.id = r.coupon_id;
                DELETE FROM orders_coupon_redemption WHERE order_id = v_order;
                UPDATE orders_order SET status = 'failed' WHERE id = v_order;
                p_released := p_released + 1;
            EXCEPTION WHEN OTHERS THEN
                -- Everything this order's block changed is undone; the
                -- order stays pending, with its stock reserved, for staff
                -- to put right (recovery reports the warning).
                v_skipped := v_skipped || v_order;
                RAISE WARNING 'orders_release_stale_reservations: order % not released (SQLSTATE %): %',
                    v_order, SQLSTATE, SQLERRM;
            END;
        END LOOP;
        -- A batch emptied by the recheck still ends here: its orders are
        -- captured now, and the next batch's SELECT, a new snapshot, no
        -- longer takes them.
        COMMIT;
    END LOOP;
END;
$$;
