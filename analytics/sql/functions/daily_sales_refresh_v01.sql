-- Refresh the daily-sales view (analytics/sql/views/daily_sales_v01.sql)
-- and note when, and up to which day it holds.
--
-- SECURITY DEFINER, so that shop_app's beat task may refresh a view only its
-- owner may: REFRESH MATERIALIZED VIEW is the owner's right alone. It acts
-- as a job first, whatever the caller's context: the view's query obeys the
-- order policies (FORCE), and only a job's context shows every order. The
-- search_path is pinned, as a definer's must be.
--
-- CONCURRENTLY: readers of the view are not blocked while it refreshes
-- (a plain REFRESH takes an ACCESS EXCLUSIVE lock for its whole run); the
-- price is a full comparison of old and new contents, fine for a row per
-- day. Two refreshes at once wait for each other (EXCLUSIVE lock).
CREATE FUNCTION analytics_daily_sales_refresh() RETURNS timestamptz
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, public AS $$
BEGIN
    PERFORM set_config('app.customer_id', '', true),
            set_config('app.is_staff', 'off', true),
            set_config('app.job', 'daily_sales_refresh', true);
    REFRESH MATERIALIZED VIEW CONCURRENTLY analytics_daily_sales;
    INSERT INTO analytics_refresh AS r (name, refreshed_at, covers_until)
    VALUES ('analytics_daily_sales', now(), (now() AT TIME ZONE 'UTC')::date)
    ON CONFLICT (name) DO UPDATE
        SET refreshed_at = EXCLUDED.refreshed_at,
            covers_until = EXCLUDED.covers_until;
    RETURN now();
END;
$$;

REVOKE EXECUTE ON FUNCTION analytics_daily_sales_refresh() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION analytics_daily_sales_refresh() TO shop_app;
