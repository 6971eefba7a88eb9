-- pg_temp last in analytics_daily_sales_refresh's search_path, as every
-- SECURITY DEFINER function's (shop/sql/functions/outbox_append_search_path_v01.sql
-- says why): no caller's temporary analytics_refresh can take its writes.
ALTER FUNCTION analytics_daily_sales_refresh() SET search_path = pg_catalog, public, pg_temp;
