-- Undo touch_updated_at_v01.sql; the apps' triggers go first, in their own
-- migrations' reverse.
DROP FUNCTION shop_touch_updated_at();
