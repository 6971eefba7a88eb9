-- Undo loader_v01.sql.
REVOKE INSERT ON orders_stock_movement FROM shop_loader;
REVOKE USAGE ON SEQUENCE
    orders_coupon_id_seq, orders_order_id_seq, orders_order_line_id_seq,
    orders_payment_id_seq, orders_coupon_redemption_id_seq
    FROM shop_loader;
REVOKE SELECT, INSERT ON
    orders_coupon, orders_order, orders_order_line, orders_payment,
    orders_coupon_redemption
    FROM shop_loader;
