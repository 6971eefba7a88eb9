-- Remove the order archive from the primary (analytics/shards.py:
-- shards_teardown): the table, its foreign partitions, the servers and their
-- user mappings. The extension goes last, and only if no other server uses
-- it: without CASCADE, DROP EXTENSION refuses then.
DROP SCHEMA IF EXISTS shards CASCADE;
DROP SERVER IF EXISTS {servers} CASCADE;
DROP EXTENSION IF EXISTS postgres_fdw;
