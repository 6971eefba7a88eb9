-- Revenue per day with its running total and its 7-day moving average. A
-- calendar first (generate_series), LEFT JOINed to the sales, so that a day
-- without sales is a row of 0 and not a gap: a "7-day" frame of ROWS over
-- gappy data would reach back further than 7 days.
--   running_total  SUM over ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW
--   moving_avg_7d  AVG over ROWS BETWEEN 6 PRECEDING AND CURRENT ROW: this
--                  day and the six before it (fewer at the window's start)
-- Without an explicit frame, ORDER BY in OVER() means RANGE ... CURRENT ROW,
-- which counts rows with equal keys together; ROWS says what is meant.
WITH days AS (
    SELECT d::date AS day
    FROM generate_series(%(first_day)s::date, %(last_day)s::date,
                         interval '1 day') AS d
), sales AS (
    SELECT (o.created_at AT TIME ZONE %(tz)s)::date AS day, sum(o.total) AS revenue,
           count(*) AS orders
    FROM orders_order AS o
    WHERE o.status = 'paid'
      AND o.created_at >= %(since)s AND o.created_at < %(until)s
    GROUP BY 1
)
SELECT days.day,
       COALESCE(sales.orders, 0) AS orders,
       COALESCE(sales.revenue, 0) AS revenue,
       sum(COALESCE(sales.revenue, 0)) OVER (
           ORDER BY days.day ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW
       ) AS running_total,
       round(avg(COALESCE(sales.revenue, 0)) OVER (
           ORDER BY days.day ROWS BETWEEN 6 PRECEDING AND CURRENT ROW
       ), 2) AS moving_avg_7d
FROM days
LEFT JOIN sales ON sales.day = days.day
ORDER BY days.day
