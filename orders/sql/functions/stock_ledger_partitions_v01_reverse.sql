DROP FUNCTION orders_stock_ledger_partitions_detach(date);
DROP FUNCTION orders_stock_ledger_partitions_ensure(date, date);
DROP FUNCTION orders_stock_ledger_partition_make(date);
DROP FUNCTION orders_stock_ledger_partition_name(date);
