-- What shop_loader, the seed's COPY, may reach of orders: the tables the
-- orders phase writes (orders/seeding/), payments among them, since the
-- seeded history is paid for. Not carts, idempotency keys or the fake
-- gateway's ledger: no phase seeds them. shop_loader bypasses row-level
-- security, so these grants are its whole reach
-- (shop/sql/grants_loader_schema_v01.sql). SELECT: --if-empty looks for rows.
-- USAGE on a sequence: the seed takes its keys from it
-- (shop/seeding/sql/reserve_ids.sql).
GRANT SELECT, INSERT ON
    orders_coupon, orders_order, orders_order_line, orders_payment,
    orders_coupon_redemption
    TO shop_loader;
GRANT USAGE ON SEQUENCE
    orders_coupon_id_seq, orders_order_id_seq, orders_order_line_id_seq,
    orders_payment_id_seq, orders_coupon_redemption_id_seq
    TO shop_loader;
-- The stock ledger's trigger (triggers/stock_ledger_v01.sql) runs as whoever
-- writes catalog_stock_level: as the loader, when the catalogue phase copies
-- the opening stock in. It appends and never reads.
GRANT INSERT ON orders_stock_movement TO shop_loader;
