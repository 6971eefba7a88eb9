-- Undo loader_v02.sql.
REVOKE UPDATE (min_price) ON catalog_product FROM shop_loader;
