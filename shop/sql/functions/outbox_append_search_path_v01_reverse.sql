ALTER FUNCTION shop_outbox_append(jsonb) SET search_path = pg_catalog, public;
