-- Each order's own reference at the payment gateway
-- (orders/models.py:new_payment_reference), in place of `order-<id>`: ids
-- start again after `seed --reset` (RESTART IDENTITY) and in every new test
-- database, while a gateway remembers every reference it was ever sent, so
-- a new order could be "paid" by an old order's capture.
--
-- The default is volatile, so ADD COLUMN rewrites the table, drawing a
-- reference for every existing order, under an ACCESS EXCLUSIVE lock held
-- until the migration commits. That is seconds for the shop's tables; on
-- a large, busy table the column would be added without a default and
-- filled in batches, and NOT NULL proven by a validated CHECK.
ALTER TABLE orders_order
    ADD COLUMN payment_reference varchar(64) NOT NULL DEFAULT gen_random_uuid();
ALTER TABLE orders_order
    ADD CONSTRAINT orders_order_payment_reference_uniq UNIQUE (payment_reference);

-- Row-level security is FORCEd on orders (rls/row_level_security_v01.sql),
-- for the owner running this migration too: act as staff, until COMMIT.
SELECT set_config('app.is_staff', 'on', true);

-- Orders the gateway may already know by their old name keep it, so that
-- a lookup or a refund still finds their charge: a pending checkout may be
-- calling the gateway as `order-<id>` right now, and a charge the ledger
-- holds under `order-<id>` that is this order's own (the same gateway id,
-- or the same amount for an answer still in doubt) was made under it. The
-- old name is never given to a new order, so keeping it is safe. The
-- foreign keys are DEFERRABLE INITIALLY DEFERRED: checked at once here, so
-- that no check is left pending on the table, which would stop the
-- migration's later ALTER TABLEs.
SET CONSTRAINTS ALL IMMEDIATE;
UPDATE orders_order AS o
SET payment_reference = 'order-' || o.id
WHERE o.status = 'pending'
   OR EXISTS (
       SELECT 1
       FROM orders_fake_gateway_ledger AS l
       JOIN orders_payment AS p ON p.order_id = o.id
       WHERE l.kind = 'charge'
         AND l.reference = 'order-' || o.id
         AND p.status IN ('unknown', 'not_captured', 'declined', 'captured')
         AND (l.gateway_reference = p.gateway_reference
              OR (p.status IN ('unknown', 'not_captured') AND l.amount = p.amount)));
