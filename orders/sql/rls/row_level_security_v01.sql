-- Row-level security on every customer-owned table of orders (chapter 22):
-- carts and their items, orders, their lines and payments, idempotency
-- keys, coupon redemptions.
-- The readers shop_ctx_*() and what the three settings mean:
-- shop/sql/rls/context_functions_v01.sql. ENABLE turns the policies on for
-- shop_app and shop_readonly; FORCE also for the table's owner.

-- Tables with a customer_id of their own. Each gets one policy per kind of
-- actor; permissive policies combine with OR. A policy without WITH CHECK
-- uses its USING expression for new rows too, so a customer can neither
-- insert a row for someone else nor move one of theirs to someone else.

ALTER TABLE orders_cart ENABLE ROW LEVEL SECURITY;
ALTER TABLE orders_cart FORCE ROW LEVEL SECURITY;
CREATE POLICY orders_cart_customer ON orders_cart
    USING (customer_id = (SELECT shop_ctx_customer_id()));
CREATE POLICY orders_cart_staff ON orders_cart
    USING ((SELECT shop_ctx_is_staff()));
-- Recovery finishes a paid checkout, which takes the bought units out of
-- that customer's cart.
CREATE POLICY orders_cart_job ON orders_cart
    USING ((SELECT shop_ctx_is_job()));

ALTER TABLE orders_order ENABLE ROW LEVEL SECURITY;
ALTER TABLE orders_order FORCE ROW LEVEL SECURITY;
CREATE POLICY orders_order_customer ON orders_order
    USING (customer_id = (SELECT shop_ctx_customer_id()));
CREATE POLICY orders_order_staff ON orders_order
    USING ((SELECT shop_ctx_is_staff()));
CREATE POLICY orders_order_job ON orders_order
    USING ((SELECT shop_ctx_is_job()));

ALTER TABLE orders_idempotency_key ENABLE ROW LEVEL SECURITY;
ALTER TABLE orders_idempotency_key FORCE ROW LEVEL SECURITY;
-- A key or a redemption also points at an order, and a foreign key check
-- ignores row-level security: without the EXISTS, a customer could link
-- their own row to someone else's order. The lookup reads orders_order under
-- its own policies, so only the customer's own orders pass.
CREATE POLICY orders_idempotency_key_customer ON orders_idempotency_key
    USING (customer_id = (SELECT shop_ctx_customer_id())
           AND (order_id IS NULL
                OR EXISTS (SELECT FROM orders_order AS o
                           WHERE o.id = orders_idempotency_key.order_id)));
CREATE POLICY orders_idempotency_key_staff ON orders_idempotency_key
    USING ((SELECT shop_ctx_is_staff()));
CREATE POLICY orders_idempotency_key_job ON orders_idempotency_key
    USING ((SELECT shop_ctx_is_job()));

ALTER TABLE orders_coupon_redemption ENABLE ROW LEVEL SECURITY;
ALTER TABLE orders_coupon_redemption FORCE ROW LEVEL SECURITY;
CREATE POLICY orders_coupon_redemption_customer ON orders_coupon_redemption
    USING (customer_id = (SELECT shop_ctx_customer_id())
           AND EXISTS (SELECT FROM orders_order AS o
                       WHERE o.id = orders_coupon_redemption.order_id));
CREATE POLICY orders_coupon_redemption_staff ON orders_coupon_redemption
    USING ((SELECT shop_ctx_is_staff()));
CREATE POLICY orders_coupon_redemption_job ON orders_coupon_redemption
    USING ((SELECT shop_ctx_is_job()));

-- Tables owned through their parent, with no customer_id of their own (no
-- copy to keep in sync, chapter 03): a customer's policy looks the parent
-- up. Naming the customer in that lookup, not only the parent's id, lets
-- the planner read the customer's few parents by index (a hashed subplan)
-- instead of probing the parent once per row; and staff and jobs get
-- policies of their own, which answer without looking at the parent at
-- all. (The measurements behind this shape: docs/benchmarks.md.) The
-- parent's own policies still apply inside the lookup.

ALTER TABLE orders_cart_item ENABLE ROW LEVEL SECURITY;
ALTER TABLE orders_cart_item FORCE ROW LEVEL SECURITY;
CREATE POLICY orders_cart_item_customer ON orders_cart_item
    USING (EXISTS (
        SELECT FROM orders_cart AS c
        WHERE c.id = orders_cart_item.cart_id
          AND c.customer_id = (SELECT shop_ctx_customer_id())));
CREATE POLICY orders_cart_item_staff ON orders_cart_item
    USING ((SELECT shop_ctx_is_staff()));
CREATE POLICY orders_cart_item_job ON orders_cart_item
    USING ((SELECT shop_ctx_is_job()));

ALTER TABLE orders_order_line ENABLE ROW LEVEL SECURITY;
ALTER TABLE orders_order_line FORCE ROW LEVEL SECURITY;
CREATE POLICY orders_order_line_customer ON orders_order_line
    USING (EXISTS (
        SELECT FROM orders_order AS o
        WHERE o.id = orders_order_line.order_id
          AND o.customer_id = (SELECT shop_ctx_customer_id())));
CREATE POLICY orders_order_line_staff ON orders_order_line
    USING ((SELECT shop_ctx_is_staff()));
CREATE POLICY orders_order_line_job ON orders_order_line
    USING ((SELECT shop_ctx_is_job()));

ALTER TABLE orders_payment ENABLE ROW LEVEL SECURITY;
ALTER TABLE orders_payment FORCE ROW LEVEL SECURITY;
CREATE POLICY orders_payment_customer ON orders_payment
    USING (EXISTS (
        SELECT FROM orders_order AS o
        WHERE o.id = orders_payment.order_id
          AND o.customer_id = (SELECT shop_ctx_customer_id())));
CREATE POLICY orders_payment_staff ON orders_payment
    USING ((SELECT shop_ctx_is_staff()));
CREATE POLICY orders_payment_job ON orders_payment
    USING ((SELECT shop_ctx_is_job()));
