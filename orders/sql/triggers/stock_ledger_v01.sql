-- The stock ledger: every change to a stock level becomes a row in
-- orders_stock_movement, whoever made it (checkout, staff, psql).
--
-- Statement-level triggers with transition tables: one INSERT ... SELECT per
-- statement instead of one per row, so a bulk COPY of 300k stock rows costs
-- one extra statement, not 300k. The reason and the order come from
-- transaction-local settings the service sets (set_config(..., true)), so a
-- change made without them is still recorded, as 'unspecified'.
CREATE FUNCTION orders_record_stock_insert() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO orders_stock_movement
        (stock_level_id, on_hand_delta, reserved_delta, reason, order_id, created_at)
    SELECT n.id, n.quantity_on_hand, n.reserved,
           COALESCE(NULLIF(current_setting('app.stock_reason', true), ''), 'initial'),
           NULLIF(current_setting('app.order_id', true), '')::bigint,
           now()
    FROM new_levels AS n
    WHERE n.quantity_on_hand <> 0 OR n.reserved <> 0;
    RETURN NULL;
END;
$$;

CREATE FUNCTION orders_record_stock_update() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO orders_stock_movement
        (stock_level_id, on_hand_delta, reserved_delta, reason, order_id, created_at)
    SELECT n.id,
           n.quantity_on_hand - o.quantity_on_hand,
           n.reserved - o.reserved,
           COALESCE(NULLIF(current_setting('app.stock_reason', true), ''), 'unspecified'),
           NULLIF(current_setting('app.order_id', true), '')::bigint,
           now()
    FROM new_levels AS n
    JOIN old_levels AS o ON o.id = n.id
    WHERE n.quantity_on_hand <> o.quantity_on_hand OR n.reserved <> o.reserved;
    RETURN NULL;
END;
$$;

CREATE TRIGGER orders_stock_ledger_insert
    AFTER INSERT ON catalog_stock_level
    REFERENCING NEW TABLE AS new_levels
    FOR EACH STATEMENT EXECUTE FUNCTION orders_record_stock_insert();

CREATE TRIGGER orders_stock_ledger_update
    AFTER UPDATE ON catalog_stock_level
    REFERENCING OLD TABLE AS old_levels NEW TABLE AS new_levels
    FOR EACH STATEMENT EXECUTE FUNCTION orders_record_stock_update();
