-- Undo loader_v03.sql.
REVOKE UPDATE (in_stock) ON catalog_product FROM shop_loader;
