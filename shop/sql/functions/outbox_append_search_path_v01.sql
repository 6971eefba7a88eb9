-- pg_temp last in shop_outbox_append's search_path. Left out, the session's
-- temporary schema is searched *first* for tables: a caller could create a
-- TEMP TABLE shop_outbox_event (or shop_outbox_sequence) and have this
-- SECURITY DEFINER function write its events there instead of into the
-- outbox. Named last, it is searched after public, where every table the
-- function uses exists.
ALTER FUNCTION shop_outbox_append(jsonb) SET search_path = pg_catalog, public, pg_temp;
