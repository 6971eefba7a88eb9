-- Delete the oldest events shipped before the cut-off, a bounded batch at a
-- time (the caller loops), through shop_outbox_shipped_idx. The pending ones
-- are never touched, however old: they are not in the event log yet.
DELETE FROM shop_outbox_event
WHERE id IN (SELECT id
             FROM shop_outbox_event
             WHERE shipped_at IS NOT NULL AND shipped_at < %(cutoff)s
             ORDER BY shipped_at
             LIMIT %(limit)s)
