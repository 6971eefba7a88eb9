DROP FUNCTION orders_order_lines_total(bigint);
