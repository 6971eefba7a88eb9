-- Repeat-purchase cohorts: customers grouped by the month of their first
-- paid order, and how many of each cohort ordered again in each later
-- month (month 0 is the cohort's own month: everyone). The first order is a
-- window function (min() OVER per customer), so each order row knows its
-- customer's cohort without a self-join; the months between are computed
-- from year and month, since an interval of "one month" has no fixed length.
WITH paid AS (
    SELECT o.customer_id,
           date_trunc('month', o.created_at AT TIME ZONE %(tz)s)::date AS month
    FROM orders_order AS o
    WHERE o.status = 'paid'
), with_cohort AS (
    SELECT customer_id, month,
           min(month) OVER (PARTITION BY customer_id) AS cohort
    FROM paid
)
SELECT cohort,
       (extract(year FROM month) - extract(year FROM cohort)) * 12
           + extract(month FROM month) - extract(month FROM cohort) AS months_later,
       count(DISTINCT customer_id) AS customers
FROM with_cohort
WHERE cohort >= %(since_month)s AND cohort < %(until_month)s
GROUP BY 1, 2
ORDER BY 1, 2
