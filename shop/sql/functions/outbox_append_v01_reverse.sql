DROP FUNCTION shop_outbox_enabled();
DROP FUNCTION shop_outbox_append(jsonb);
