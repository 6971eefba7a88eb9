-- The context that row-level security reads (chapter 22). Every app's
-- policies, in its own migrations, call these readers.
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
