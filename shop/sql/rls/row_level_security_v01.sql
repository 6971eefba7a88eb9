-- Row-level security on every customer-owned table (chapter 22).
--
-- Who is acting is told by three transaction-local settings that
-- shop/db_context.py sets at the start of every transaction touching these
-- tables (set_config(name, value, true): gone at COMMIT or ROLLBACK, so a
-- pooled connection never carries one request's identity into the next):
--
--   app.customer_id  the customer a request acts for     ('' otherwise)
--   app.is_staff     'on' for staff work (admin, staff API, reports)
--   app.job          the name of a background job (recovery), '' otherwise
--
-- A transaction that set none of them acts for nobody and sees no row of
-- these tables: a forgotten context is an empty page, never another
-- customer's data. ENABLE turns the policies on for shop_app and
-- shop_readonly; FORCE also for the tables' owner, so a query a migration
-- or a lab runs as shop_owner obeys them too. Only superusers and roles with
-- BYPASSRLS (shop_loader, the seed's COPY: scripts/sql/roles.sql) skip them.
--
-- This guards against the app's own mistakes (a missing WHERE customer_id,
-- a leaked pooled connection), not against an attacker who runs arbitrary
-- SQL as shop_app: that session could call set_config() itself.

-- Readers for the settings. current_setting(name, true) is NULL for a name
-- never set in the session and '' for one set locally by an earlier,
-- finished transaction; both mean "not set". The policies call them inside
-- a scalar subquery, (SELECT shop_ctx_...()), which the planner turns into
-- an InitPlan: evaluated once per query instead of once per row.
CREATE FUNCTION shop_ctx_customer_id() RETURNS bigint
LANGUAGE sql STABLE PARALLEL SAFE
AS $$ SELECT NULLIF(current_setting('app.customer_id', true), '')::bigint $$;

CREATE FUNCTION shop_ctx_is_staff() RETURNS boolean
LANGUAGE sql STABLE PARALLEL SAFE
AS $$ SELECT COALESCE(current_setting('app.is_staff', true), '') = 'on' $$;

CREATE FUNCTION shop_ctx_is_job() RETURNS boolean
LANGUAGE sql STABLE PARALLEL SAFE
AS $$ SELECT COALESCE(current_setting('app.job', true), '') <> '' $$;

-- Tables with a customer_id of their own. Each gets one policy per kind of
-- actor; permissive policies combine with OR. A policy without WITH CHECK
-- uses its USING expression for new rows too, so a customer can neither
-- insert a row for someone else nor move one of theirs to someone else.

ALTER TABLE accounts_address ENABLE ROW LEVEL SECURITY;
ALTER TABLE accounts_address FORCE ROW LEVEL SECURITY;
CREATE POLICY accounts_address_customer ON accounts_address
    USING (customer_id = (SELECT shop_ctx_customer_id()));
CREATE POLICY accounts_address_staff ON accounts_address
    USING ((SELECT shop_ctx_is_staff()));

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

-- Reviews are public to read; only their author (or staff) writes them.
-- Policies FOR one command apply to that command only: SELECT is open to
-- all, INSERT / UPDATE / DELETE are checked against the author.
ALTER TABLE catalog_review ENABLE ROW LEVEL SECURITY;
ALTER TABLE catalog_review FORCE ROW LEVEL SECURITY;
CREATE POLICY catalog_review_public_read ON catalog_review
    FOR SELECT USING (true);
CREATE POLICY catalog_review_author_insert ON catalog_review
    FOR INSERT WITH CHECK (customer_id = (SELECT shop_ctx_customer_id()) OR (SELECT shop_ctx_is_staff()));
CREATE POLICY catalog_review_author_update ON catalog_review
    FOR UPDATE
    USING (customer_id = (SELECT shop_ctx_customer_id()) OR (SELECT shop_ctx_is_staff()))
    WITH CHECK (customer_id = (SELECT shop_ctx_customer_id()) OR (SELECT shop_ctx_is_staff()));
CREATE POLICY catalog_review_author_delete ON catalog_review
    FOR DELETE USING (customer_id = (SELECT shop_ctx_customer_id()) OR (SELECT shop_ctx_is_staff()));
