-- An order's subtotal computed from its lines: what the stored
-- orders_order.subtotal must equal. Used by the consistency checks in the
-- tests and the seed's (chapter 09). STABLE: it reads tables but changes
-- nothing, so the planner may call it once per row of a query.
-- PL/pgSQL rather than LANGUAGE sql: no speed is lost, since a scalar
-- function whose body has a FROM is never inlined either way.
CREATE FUNCTION orders_order_lines_total(p_order_id bigint) RETURNS numeric(12, 2)
LANGUAGE plpgsql STABLE AS $$
DECLARE
    v_total numeric(12, 2);
BEGIN
    SELECT COALESCE(SUM(unit_price * quantity), 0)
    INTO v_total
    FROM orders_order_line
    WHERE order_id = p_order_id;
    RETURN v_total;
END;
$$;
