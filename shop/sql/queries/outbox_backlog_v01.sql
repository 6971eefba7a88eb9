-- The outbox's backlog: how many events wait to be shipped, and since when;
-- then how many MongoDB refused for good (set aside, waiting for a person).
-- The first reads shop_outbox_pending_idx, which holds only pending rows,
-- so the count costs the backlog's size, not the history's; refused events
-- are few, and never purged.
SELECT (SELECT count(*) FROM shop_outbox_event
        WHERE shipped_at IS NULL AND refused_at IS NULL),
       (SELECT min(occurred_at) FROM shop_outbox_event
        WHERE shipped_at IS NULL AND refused_at IS NULL),
       (SELECT count(*) FROM shop_outbox_event WHERE refused_at IS NOT NULL)
