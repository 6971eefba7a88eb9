ALTER FUNCTION analytics_daily_sales_refresh() SET search_path = pg_catalog, public;
