-- Undo loader_v04.sql.
REVOKE INSERT ON catalog_search_posting FROM shop_loader;
