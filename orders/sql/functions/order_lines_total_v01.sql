-- An order's subtotal computed from its lines: what the stored
-- orders_order.subtotal must equal. Used by the consistency report and tests
-- (chapter 09): STABLE, because it reads tables but changes nothing.
CREATE FUNCTION orders_order_lines_total(p_order_id bigint) RETURNS numeric(12, 2)
LANGUAGE sql STABLE AS $$
    SELECT COALESCE(SUM(unit_price * quantity), 0)::numeric(12, 2)
    FROM orders_order_line
    WHERE order_id = p_order_id
$$;
