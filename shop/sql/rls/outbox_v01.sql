-- Who may touch the outbox (shop/models.py). Any context appends, through
-- shop_outbox_append: a customer's checkout, staff in the admin, a job;
-- that is how an event is written in the transaction of its change. Only a job context reads,
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

-- Events are appended by shop_outbox_append alone, which runs as the owner
-- (shop/sql/functions/outbox_append_v01.sql): the app may not insert one
-- itself, nor touch the counters. Reports have no use for either table.
REVOKE INSERT ON shop_outbox_event FROM shop_app;
REVOKE ALL ON shop_outbox_sequence FROM shop_app;
REVOKE SELECT ON shop_outbox_event, shop_outbox_sequence FROM shop_readonly;
-- The relay marks rows shipped (or refused, with MongoDB's reason) and the
-- purge deletes them; nothing rewrites an event's content.
REVOKE UPDATE ON shop_outbox_event FROM shop_app;
GRANT UPDATE (shipped_at, refused_at, refusal) ON shop_outbox_event TO shop_app;
