-- Undo order_payment_reference_v01.sql; the unique constraint goes with it.
ALTER TABLE orders_order DROP COLUMN payment_reference;
