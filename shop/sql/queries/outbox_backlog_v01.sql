-- The outbox's backlog: how many events wait to be shipped, and since when.
-- Read through shop_outbox_pending_idx, which holds only pending rows, so
-- the count costs the backlog's size, not the history's.
SELECT count(*), min(occurred_at)
FROM shop_outbox_event
WHERE shipped_at IS NULL
