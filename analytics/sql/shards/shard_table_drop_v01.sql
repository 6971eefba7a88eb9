-- Empty a shard that keeps its database (analytics/shards.py:shards_teardown):
-- the development database's, which scripts/services.sh made and `shards up`
-- expects to find. The pg_stat_statements extension stays with it.
DROP TABLE IF EXISTS order_history;
