-- Version 2 takes the constraint's name once version 1 is gone, so the
-- model's UniqueConstraint and the database agree.
ALTER INDEX orders_payment_one_refund_per_order_v02
RENAME TO orders_payment_one_refund_per_order
