-- Sales per day, the closed days from the materialized view and the days
-- since its refresh from the live tables (analytics/sql/views/
-- daily_sales_v01.sql), so that an order placed a second ago is counted:
-- the view holds the days before covers_until, its refresh day; from that
-- day on, orders_order is read, through its status index, for a day or two
-- of orders at most when beat refreshes on schedule. Days are UTC days, the
-- view's. `source` says where each row comes from.
--
-- The freshness rides along on every row, and on a row of NULLs when no day
-- had sales: one statement, so one snapshot, and the freshness it tells is
-- that of the rows it gives.
WITH fresh AS (
    SELECT refreshed_at, covers_until, now() AS live_as_of
    FROM analytics_refresh
    WHERE name = 'analytics_daily_sales'
), closed AS (
    SELECT v.day, v.orders, v.revenue, 'view' AS source
    FROM analytics_daily_sales AS v, fresh
    WHERE v.day >= %(first_day)s AND v.day <= %(last_day)s
      AND v.day < fresh.covers_until
), live AS (
    SELECT (o.created_at AT TIME ZONE 'UTC')::date AS day,
           count(*) AS orders, sum(o.total) AS revenue, 'live' AS source
    FROM orders_order AS o, fresh
    WHERE o.status = 'paid'
      AND o.created_at >= greatest(fresh.covers_until, %(first_day)s::date)::timestamp
                          AT TIME ZONE 'UTC'
      AND o.created_at < (%(last_day)s::date + 1)::timestamp AT TIME ZONE 'UTC'
    GROUP BY 1
), days AS (
    SELECT day, orders, revenue, source FROM closed
    UNION ALL
    SELECT day, orders, revenue, source FROM live
)
SELECT fresh.refreshed_at, fresh.covers_until, fresh.live_as_of,
       days.day, days.orders, days.revenue, days.source
FROM fresh
LEFT JOIN days ON true
ORDER BY days.day
