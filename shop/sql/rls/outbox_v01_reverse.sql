REVOKE UPDATE (shipped_at, refused_at, refusal) ON shop_outbox_event FROM shop_app;
GRANT UPDATE ON shop_outbox_event TO shop_app;
GRANT SELECT ON shop_outbox_event, shop_outbox_sequence TO shop_readonly;
GRANT SELECT, INSERT, UPDATE, DELETE ON shop_outbox_sequence TO shop_app;
GRANT INSERT ON shop_outbox_event TO shop_app;
DROP POLICY shop_outbox_event_job ON shop_outbox_event;
DROP POLICY shop_outbox_event_append ON shop_outbox_event;
ALTER TABLE shop_outbox_event NO FORCE ROW LEVEL SECURITY;
ALTER TABLE shop_outbox_event DISABLE ROW LEVEL SECURITY;
