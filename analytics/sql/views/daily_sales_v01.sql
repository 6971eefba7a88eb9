-- Daily sales of the closed days, computed once and kept: the materialized
-- view behind the `daily-sales` report (analytics/reports.py). A closed day
-- (before today, UTC: the shop's TIME_ZONE) no longer changes but for a
-- late cancellation, which the next refresh picks up; today comes from the
-- live tables, so an order placed a second ago is in the report at once.
--
-- Row-level security decides what a refresh sees. The view's query runs as
-- its owner, shop_owner, and FORCE ROW LEVEL SECURITY on orders_order holds
-- the owner to the policies too: refreshed with no context, the view would
-- be silently empty, no error. So the only refresh is
-- analytics_daily_sales_refresh() (analytics/sql/functions/
-- daily_sales_refresh_v01.sql), which acts as a job, the context whose
-- policy shows every order. A materialized view has no policies of its own:
-- its rows (days, counts, sums: nothing of a customer's) are as readable as
-- the grants make them, and only the reports' role and the app may read.
CREATE TABLE analytics_refresh (
    name text CONSTRAINT analytics_refresh_pkey PRIMARY KEY,
    refreshed_at timestamptz NOT NULL,
    -- The first day the view does not hold: the day of the refresh. From
    -- there on, the report reads the live tables.
    covers_until date NOT NULL
);

SELECT set_config('app.job', 'daily_sales_refresh', true);

CREATE MATERIALIZED VIEW analytics_daily_sales AS
SELECT (o.created_at AT TIME ZONE 'UTC')::date AS day,
       count(*) AS orders,
       sum(o.total) AS revenue
FROM orders_order AS o
WHERE o.status = 'paid'
  AND o.created_at < date_trunc('day', now() AT TIME ZONE 'UTC') AT TIME ZONE 'UTC'
GROUP BY 1;

-- REFRESH ... CONCURRENTLY needs a unique index on plain columns: it builds
-- the new contents aside, then applies only the differences, matching rows
-- by this key, so readers are never blocked and never see an empty view.
CREATE UNIQUE INDEX analytics_daily_sales_day ON analytics_daily_sales (day);

INSERT INTO analytics_refresh (name, refreshed_at, covers_until)
VALUES ('analytics_daily_sales', now(), (now() AT TIME ZONE 'UTC')::date);

REVOKE ALL ON analytics_daily_sales, analytics_refresh FROM shop_app, shop_readonly;
GRANT SELECT ON analytics_daily_sales, analytics_refresh TO shop_app, shop_readonly;
