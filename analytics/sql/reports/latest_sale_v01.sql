-- The day of the newest paid order, in the shop's time zone (NULL if none):
-- the labs end their windows there. The status index's newest entry.
SELECT (max(created_at) AT TIME ZONE %(tz)s)::date
FROM orders_order
WHERE status = 'paid'
