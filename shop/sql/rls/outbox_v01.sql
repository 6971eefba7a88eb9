-- Who may touch the outbox (shop/models.py). Any context appends: a
-- customer's checkout, staff in the admin, a job; that is how an event is
-- written in the transaction of its change. Only a job context reads,
-- marks shipped or deletes: the relay, the purge, the backlog count. A
-- customer's request sees no event, not even its own: events carry other
-- customers' ids and amounts, and nothing in a request needs to read them.
--
-- INSERT ... RETURNING would need the read policy too; the writers
-- (shop_outbox_append) return nothing for that reason.
ALTER TABLE shop_outbox_event ENABLE ROW LEVEL SECURITY;
ALTER TABLE shop_outbox_event FORCE ROW LEVEL SECURITY;
CREATE POLICY shop_outbox_event_append ON shop_outbox_event
    FOR INSERT WITH CHECK (true);
CREATE POLICY shop_outbox_event_job ON shop_outbox_event
    USING ((SELECT shop_ctx_is_job()));

-- The counters hold aggregate ids and counts, nothing of a customer's; any
-- writer moves them (ON CONFLICT DO UPDATE also needs SELECT).
-- Reports have no use for either table.
REVOKE SELECT ON shop_outbox_event, shop_outbox_sequence FROM shop_readonly;
-- The relay marks rows shipped and the purge deletes them; nothing rewrites
-- an event's content.
REVOKE UPDATE ON shop_outbox_event FROM shop_app;
GRANT UPDATE (shipped_at) ON shop_outbox_event TO shop_app;
