-- The events of orders, payments, stock and carts, written into the outbox
-- (shop/models.py) by the database itself, in the transaction of the change:
-- whatever path made it (the API's checkout, the SQL function
-- orders_checkout_place, the recovery procedure, the admin, psql), its
-- events are there when it commits, and gone if it rolls back. All of them
-- go through shop_outbox_append (shop/sql/functions/outbox_append_v01.sql).
-- Amounts travel as strings: a JSON number becomes a float in most readers,
-- and money is never a float. No address, token or encrypted field travels.

-- Orders: deferred row triggers, which run at COMMIT in the order their
-- changes happened. Deferred because the order's lines are written after
-- the order itself (checkout's phase 1, the SQL function), and
-- `order.placed` carries them; and because both of this file's order
-- triggers must run in one queue, so that an order placed and paid in one
-- transaction (the SQL function inserts it paid) gets placed before paid.
CREATE FUNCTION orders_outbox_order_event(p_type text, p_order orders_order)
RETURNS jsonb
LANGUAGE sql STABLE AS $$
    SELECT jsonb_build_object(
        'type', p_type,
        'aggregate_type', 'order',
        'aggregate_id', p_order.id,
        'customer_id', p_order.customer_id,
        'payload', jsonb_build_object(
            'order_id', p_order.id,
            'status', p_order.status,
            'total', p_order.total::text
        ) || CASE WHEN p_type <> 'order.placed' THEN '{}'::jsonb ELSE
            jsonb_build_object(
                'subtotal', p_order.subtotal::text,
                'discount', p_order.discount::text,
                'coupon_id', p_order.coupon_id,
                'lines', COALESCE((
                    SELECT jsonb_agg(jsonb_build_object(
                               'variant_id', l.variant_id,
                               'product_id', v.product_id,
                               'sku', l.sku,
                               'quantity', l.quantity,
                               'unit_price', l.unit_price::text)
                           ORDER BY l.id)
                    FROM orders_order_line AS l
                    JOIN catalog_product_variant AS v ON v.id = l.variant_id
                    WHERE l.order_id = p_order.id), '[]'::jsonb))
        END)
$$;

CREATE FUNCTION orders_outbox_order_placed() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    v_placed orders_order;
BEGIN
    -- NEW is the row as it was inserted; checkout then applies the coupon to
    -- it in the same transaction (discount, total). The order as placed is
    -- the row as it stands now, in the status it was inserted with (later
    -- changes of status are events of their own, queued after this one).
    SELECT * INTO v_placed FROM orders_order WHERE id = NEW.id;
    IF NOT FOUND THEN  -- deleted since, or hidden from this context
        v_placed := NEW;
    END IF;
    v_placed.status := NEW.status;
    -- The SQL function inserts an order already paid: placed, then paid.
    PERFORM shop_outbox_append(
        jsonb_build_array(orders_outbox_order_event('order.placed', v_placed))
        || CASE WHEN NEW.status = 'pending' THEN '[]'::jsonb
                ELSE jsonb_build_array(
                         orders_outbox_order_event('order.' || NEW.status, v_placed))
           END);
    RETURN NULL;
END;
$$;

CREATE FUNCTION orders_outbox_order_status() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM shop_outbox_append(jsonb_build_array(
        orders_outbox_order_event('order.' || NEW.status, NEW)));
    RETURN NULL;
END;
$$;

CREATE CONSTRAINT TRIGGER orders_outbox_order_placed
    AFTER INSERT ON orders_order
    DEFERRABLE INITIALLY DEFERRED
    FOR EACH ROW WHEN (shop_outbox_enabled())
    EXECUTE FUNCTION orders_outbox_order_placed();

CREATE CONSTRAINT TRIGGER orders_outbox_order_status
    AFTER UPDATE OF status ON orders_order
    DEFERRABLE INITIALLY DEFERRED
    FOR EACH ROW WHEN (OLD.status IS DISTINCT FROM NEW.status
                       AND shop_outbox_enabled())
    EXECUTE FUNCTION orders_outbox_order_status();

-- A refund made is an event of its order: deferred like the order's own, so
-- that a release and its refund in one transaction keep their order.
CREATE FUNCTION orders_outbox_refunded() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM shop_outbox_append(jsonb_build_array(jsonb_build_object(
        'type', 'order.refunded',
        'aggregate_type', 'order',
        'aggregate_id', NEW.order_id,
        'customer_id', (SELECT customer_id FROM orders_order
                        WHERE id = NEW.order_id),
        'payload', jsonb_build_object(
            'order_id', NEW.order_id,
            'payment_id', NEW.id,
            'amount', NEW.amount::text))));
    RETURN NULL;
END;
$$;

CREATE CONSTRAINT TRIGGER orders_outbox_refunded_insert
    AFTER INSERT ON orders_payment
    DEFERRABLE INITIALLY DEFERRED
    FOR EACH ROW WHEN (NEW.status = 'refunded' AND shop_outbox_enabled())
    EXECUTE FUNCTION orders_outbox_refunded();

CREATE CONSTRAINT TRIGGER orders_outbox_refunded_update
    AFTER UPDATE OF status ON orders_payment
    DEFERRABLE INITIALLY DEFERRED
    FOR EACH ROW WHEN (NEW.status = 'refunded' AND OLD.status <> 'refunded'
                       AND shop_outbox_enabled())
    EXECUTE FUNCTION orders_outbox_refunded();

-- Stock: one event per row of the stock ledger, which a trigger of its own
-- writes for every change of a stock level (stock_ledger_v01.sql), so this
-- sees every change too. Statement-level, like the ledger: one call per
-- statement, whatever the number of lines.
CREATE FUNCTION orders_outbox_stock_changed() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    v_events jsonb;
BEGIN
    IF NOT shop_outbox_enabled() THEN
        RETURN NULL;
    END IF;
    SELECT jsonb_agg(jsonb_build_object(
               'type', 'stock.changed',
               'aggregate_type', 'stock_level',
               'aggregate_id', m.stock_level_id,
               'customer_id', NULL,
               'payload', jsonb_build_object(
                   'stock_level_id', m.stock_level_id,
                   'variant_id', s.variant_id,
                   'warehouse_id', s.warehouse_id,
                   'on_hand_delta', m.on_hand_delta,
                   'reserved_delta', m.reserved_delta,
                   'on_hand', s.quantity_on_hand,
                   'reserved', s.reserved,
                   'reason', m.reason,
                   'order_id', m.order_id))
           ORDER BY m.id)
    INTO v_events
    FROM new_movements AS m
    JOIN catalog_stock_level AS s ON s.id = m.stock_level_id;
    IF v_events IS NOT NULL THEN
        PERFORM shop_outbox_append(v_events);
    END IF;
    RETURN NULL;
END;
$$;

CREATE TRIGGER orders_outbox_stock_changed
    AFTER INSERT ON orders_stock_movement
    REFERENCING NEW TABLE AS new_movements
    FOR EACH STATEMENT EXECUTE FUNCTION orders_outbox_stock_changed();

-- Carts: a line added, or more of it, is `cart.item_added`; a line removed,
-- or less of it, `cart.item_removed`, with the quantity that moved. A line
-- that checkout bought and took out of the cart says which order took it
-- (app.order_id, which checkout sets).
--
-- Deferred to COMMIT, like the order's triggers, for a reason of locks: the
-- cart's sequence row is one lock for all its lines. Taken at once, it would
-- be taken after a line's row lock, and checkout's phase 3 (which deletes
-- the bought lines, then decrements a line that held more) and a customer
-- editing that line in another tab could each hold what the other waits
-- for: a deadlock. At COMMIT a transaction holds every row lock it will
-- ever take, so waiting there for the sequence row closes no cycle.
CREATE FUNCTION orders_outbox_cart_changed() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    v_line orders_cart_item;
    v_moved integer;
BEGIN
    IF TG_OP = 'INSERT' THEN
        v_line := NEW;
        v_moved := NEW.quantity;
    ELSIF TG_OP = 'DELETE' THEN
        v_line := OLD;
        v_moved := -OLD.quantity;
    ELSE
        v_line := NEW;
        v_moved := NEW.quantity - OLD.quantity;
    END IF;
    PERFORM shop_outbox_append(jsonb_build_array(jsonb_build_object(
        'type', CASE WHEN v_moved > 0 THEN 'cart.item_added'
                     ELSE 'cart.item_removed' END,
        'aggregate_type', 'cart',
        'aggregate_id', v_line.cart_id,
        -- A cart deleted with its lines is gone by COMMIT: no customer then.
        'customer_id', (SELECT customer_id FROM orders_cart
                        WHERE id = v_line.cart_id),
        'payload', jsonb_build_object(
            'cart_id', v_line.cart_id,
            'variant_id', v_line.variant_id,
            'product_id', (SELECT product_id FROM catalog_product_variant
                           WHERE id = v_line.variant_id),
            'quantity', abs(v_moved),
            'order_id', NULLIF(current_setting('app.order_id', true), '')::bigint))));
    RETURN NULL;
END;
$$;

CREATE CONSTRAINT TRIGGER orders_outbox_cart_inserted
    AFTER INSERT ON orders_cart_item
    DEFERRABLE INITIALLY DEFERRED
    FOR EACH ROW WHEN (shop_outbox_enabled())
    EXECUTE FUNCTION orders_outbox_cart_changed();

CREATE CONSTRAINT TRIGGER orders_outbox_cart_updated
    AFTER UPDATE OF quantity ON orders_cart_item
    DEFERRABLE INITIALLY DEFERRED
    FOR EACH ROW WHEN (NEW.quantity <> OLD.quantity AND shop_outbox_enabled())
    EXECUTE FUNCTION orders_outbox_cart_changed();

CREATE CONSTRAINT TRIGGER orders_outbox_cart_deleted
    AFTER DELETE ON orders_cart_item
    DEFERRABLE INITIALLY DEFERRED
    FOR EACH ROW WHEN (shop_outbox_enabled())
    EXECUTE FUNCTION orders_outbox_cart_changed();
