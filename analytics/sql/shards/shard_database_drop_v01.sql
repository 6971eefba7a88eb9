-- Drop a shard's database (analytics/shards.py:shards_teardown). FORCE ends
-- the sessions still in it: every primary backend that read the archive
-- keeps its postgres_fdw connection open until it exits.
DROP DATABASE IF EXISTS {database} WITH (FORCE);
