-- Checkout as one call: the work of orders/services/checkout.py in a single
-- PL/pgSQL function, one round trip and one transaction. It exists to be
-- measured against the app's checkout (bench/checkout.py, make bench,
-- docs/benchmarks.md), not to replace it.
--
-- This is the "everything in the database" extreme, and it cannot call a
-- real payment gateway: a function runs inside a transaction, and a gateway
-- call there would hold the stock row locks while the gateway answers. So
-- the payment is recorded as captured without asking anyone, and reserve and
-- sell are one step (the app reserves, commits, charges outside any
-- transaction, then sells). The ledger therefore shows one 'sale' movement
-- per line where the app shows 'reserve' then 'sale'. Coupons are left out.
--
-- Errors carry SQLSTATEs of the shop's own class SH (no standard class uses
-- it), numbered after the HTTP status the API answers with:
--   SH400  cart_empty
--   SH409  insufficient_stock (DETAIL: the short SKUs, comma-separated),
--          or idempotency_key_in_use
--   SH422  idempotency_key_reused
-- Any error rolls the whole call back: no order, no key, no stock change.
CREATE FUNCTION orders_checkout_place(
    p_customer_id bigint,
    p_key text,
    p_line1 text,
    p_city text,
    p_postal_code text,
    p_country text
) RETURNS bigint
LANGUAGE plpgsql
-- A stuck lock fails fast, as in shop/db_context.py:customer_transaction.
SET lock_timeout = '2s'
AS $$
DECLARE
    v_fingerprint text := encode(sha256(convert_to(jsonb_build_object(
        'line1', p_line1, 'city', p_city,
        'postal_code', p_postal_code, 'country', p_country)::text, 'UTF8')), 'hex');
    v_key_id bigint;
    v_known orders_idempotency_key%ROWTYPE;
    v_cart_id bigint;
    v_variant_ids bigint[];
    v_warehouse_ids bigint[];
    v_level_ids bigint[];
    v_quantities integer[];
    v_skus text[];
    v_names text[];
    v_prices numeric[];
    v_short text;
    v_off_sale text;
    v_subtotal numeric(12, 2);
    v_order_id bigint;
BEGIN
    PERFORM set_config('app.customer_id', p_customer_id::text, true),
            set_config('app.is_staff', 'off', true);

    -- Claim the key first. In one transaction no one ever sees it in
    -- progress: a concurrent duplicate waits on the unique index until this
    -- call commits, then finds the finished key and gets the same order back.
    INSERT INTO orders_idempotency_key
        (customer_id, key, request_fingerprint, status, created_at, updated_at)
    VALUES (p_customer_id, p_key, v_fingerprint, 'in_progress', now(), now())
    ON CONFLICT ON CONSTRAINT orders_idempotency_key_per_customer DO NOTHING
    RETURNING id INTO v_key_id;
    IF v_key_id IS NULL THEN
        SELECT * INTO v_known FROM orders_idempotency_key
        WHERE customer_id = p_customer_id AND key = p_key;
        IF v_known.request_fingerprint <> v_fingerprint THEN
            RAISE EXCEPTION 'The Idempotency-Key % was already used with other arguments.', p_key
                USING ERRCODE = 'SH422', HINT = 'Use a new key for a new checkout.';
        END IF;
        IF v_known.status <> 'completed' OR v_known.response_status <> 201 THEN
            RAISE EXCEPTION 'The Idempotency-Key % belongs to a checkout that is running or placed no order.', p_key
                USING ERRCODE = 'SH409', HINT = 'Use a new key for a new checkout.';
        END IF;
        RETURN v_known.order_id;
    END IF;

    -- The global lock order of orders/locks.py: cart, its lines, then stock
    -- rows by (variant, warehouse). Two checkouts may wait for each other,
    -- never in a cycle. Locking the lines too keeps a concurrent "add to
    -- cart" from incrementing a line this checkout is about to delete.
    SELECT id INTO v_cart_id FROM orders_cart
    WHERE customer_id = p_customer_id
    FOR UPDATE;
    PERFORM 1 FROM orders_cart_item
    WHERE cart_id = v_cart_id
    ORDER BY variant_id
    FOR UPDATE;
    PERFORM 1 FROM catalog_stock_level
    WHERE variant_id IN (SELECT variant_id FROM orders_cart_item WHERE cart_id = v_cart_id)
    ORDER BY variant_id, warehouse_id
    FOR UPDATE;

    -- One stock row per cart line that can serve all of it, the default
    -- warehouse first, then the one with most available (checkout._allocate).
    -- Prices, SKUs and names are read once, here: the order's subtotal and
    -- its lines' snapshots come from the same snapshot of the catalog.
    SELECT array_agg(a.variant_id ORDER BY a.variant_id),
           array_agg(a.warehouse_id ORDER BY a.variant_id),
           array_agg(a.level_id ORDER BY a.variant_id),
           array_agg(a.quantity ORDER BY a.variant_id),
           array_agg(v.sku ORDER BY a.variant_id),
           array_agg(p.name ORDER BY a.variant_id),
           array_agg(v.price ORDER BY a.variant_id),
           string_agg(v.sku, ', ' ORDER BY v.sku) FILTER (WHERE a.level_id IS NULL),
           string_agg(v.sku, ', ' ORDER BY v.sku)
               FILTER (WHERE NOT (v.is_active AND p.is_active)),
           sum(v.price * a.quantity)
    INTO v_variant_ids, v_warehouse_ids, v_level_ids, v_quantities,
         v_skus, v_names, v_prices, v_short, v_off_sale, v_subtotal
    FROM (
        SELECT DISTINCT ON (i.variant_id)
               i.variant_id, i.quantity, s.id AS level_id, s.warehouse_id
        FROM orders_cart_item AS i
        LEFT JOIN (catalog_stock_level AS s
                   JOIN catalog_warehouse AS w ON w.id = s.warehouse_id)
               ON s.variant_id = i.variant_id
              AND s.quantity_on_hand - s.reserved >= i.quantity
        WHERE i.cart_id = v_cart_id
        ORDER BY i.variant_id, w.is_default DESC,
                 s.quantity_on_hand - s.reserved DESC, s.warehouse_id
    ) AS a
    JOIN catalog_product_variant AS v ON v.id = a.variant_id
    JOIN catalog_product AS p ON p.id = v.product_id;

    IF v_variant_ids IS NULL THEN
        RAISE EXCEPTION 'The cart of customer % is empty.', p_customer_id
            USING ERRCODE = 'SH400', HINT = 'Add items to the cart first.';
    END IF;
    IF v_off_sale IS NOT NULL THEN
        RAISE EXCEPTION 'No longer on sale: %.', v_off_sale
            USING ERRCODE = 'SH409', DETAIL = v_off_sale,
                  HINT = 'Remove these SKUs from the cart.';
    END IF;
    IF v_short IS NOT NULL THEN
        RAISE EXCEPTION 'Not enough stock for: %.', v_short
            USING ERRCODE = 'SH409', DETAIL = v_short,
                  HINT = 'Lower the quantities or remove these SKUs from the cart.';
    END IF;

    INSERT INTO orders_order
        (customer_id, status, subtotal, discount, total,
         ship_line1, ship_line2, ship_city, ship_postal_code, ship_country,
         created_at, updated_at, paid_at)
    VALUES (p_customer_id, 'paid', v_subtotal, 0, v_subtotal,
            p_line1, '', p_city, p_postal_code, p_country,
            now(), now(), now())
    RETURNING id INTO v_order_id;

    INSERT INTO orders_order_line
        (order_id, variant_id, warehouse_id, sku, product_name, unit_price, quantity)
    SELECT v_order_id, l.variant_id, l.warehouse_id, l.sku, l.product_name,
           l.unit_price, l.quantity
    FROM unnest(v_variant_ids, v_warehouse_ids, v_skus, v_names, v_prices, v_quantities)
        AS l (variant_id, warehouse_id, sku, product_name, unit_price, quantity);

    -- Reserve and sell in one step: fewer on hand, reserved untouched. The
    -- rows are locked and were checked above; if that check were ever wrong,
    -- CHECK (reserved <= quantity_on_hand) would still refuse to oversell.
    PERFORM set_config('app.order_id', v_order_id::text, true),
            set_config('app.stock_reason', 'sale', true);
    UPDATE catalog_stock_level AS s
    SET quantity_on_hand = s.quantity_on_hand - d.quantity
    FROM unnest(v_level_ids, v_quantities) AS d (id, quantity)
    WHERE s.id = d.id;

    INSERT INTO orders_payment (order_id, amount, status, gateway_reference, created_at)
    VALUES (v_order_id, v_subtotal, 'captured', 'in-database', now());

    DELETE FROM orders_cart_item
    WHERE cart_id = v_cart_id AND variant_id = ANY (v_variant_ids);

    UPDATE orders_idempotency_key
    SET status = 'completed', order_id = v_order_id, response_status = 201,
        response_body = jsonb_build_object(
            'id', v_order_id, 'status', 'paid', 'total', v_subtotal::text),
        updated_at = now()
    WHERE id = v_key_id;

    RETURN v_order_id;
END;
$$;
