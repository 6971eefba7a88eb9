DROP TRIGGER orders_stock_ledger_update ON catalog_stock_level;
DROP TRIGGER orders_stock_ledger_insert ON catalog_stock_level;
DROP FUNCTION orders_record_stock_update();
DROP FUNCTION orders_record_stock_insert();
