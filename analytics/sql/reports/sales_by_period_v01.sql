-- Sales by day, week and month, and the window's total, in one pass over the
-- paid orders: GROUPING SETS asks for four groupings at once, where four
-- GROUP BY queries glued with UNION ALL would read the orders four times.
-- GROUPING() tells which grouping a row comes from: a 1 bit for each listed
-- column the row is *not* grouped by (day, week, month, in that order), so a
-- day row is 011 = 3, a week row 101 = 5, a month row 110 = 6, the total 7.
-- HAVING keeps the periods with at least %(min_orders)s orders; it filters
-- groups, after aggregation, where WHERE filters rows before it.
-- Days are the shop's (%(tz)s), not the server's; weeks start on Monday.
WITH sales AS (
    SELECT (o.created_at AT TIME ZONE %(tz)s)::date AS day, o.total
    FROM orders_order AS o
    WHERE o.status = 'paid'
      AND o.created_at >= %(since)s AND o.created_at < %(until)s
), periods AS (
    SELECT day, date_trunc('week', day)::date AS week,
           date_trunc('month', day)::date AS month, total
    FROM sales
)
SELECT CASE GROUPING(day, week, month)
           WHEN 3 THEN 'day' WHEN 5 THEN 'week' WHEN 6 THEN 'month'
           ELSE 'total'
       END AS grain,
       COALESCE(day, week, month) AS period_start,
       count(*) AS orders,
       sum(total) AS revenue
FROM periods
GROUP BY GROUPING SETS ((day), (week), (month), ())
HAVING count(*) >= %(min_orders)s
ORDER BY GROUPING(day, week, month), period_start
