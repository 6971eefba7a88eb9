-- Undo context_functions_v01.sql; the apps' policies that call these
-- readers are dropped first, by their own migrations' reverse.
DROP FUNCTION shop_ctx_is_job();
DROP FUNCTION shop_ctx_is_staff();
DROP FUNCTION shop_ctx_customer_id();
