-- Run the batch-committing recovery procedure (orders/sql/procedures/).
-- Outside any transaction block: a procedure that COMMITs cannot run inside one.
CALL orders_release_stale_reservations(%s, %s, 0)
