-- The order archive on the primary (chapter 15): a table with no storage of
-- its own, partitioned by HASH (customer_id), whose partitions are foreign
-- tables on the shards (archive_shard_v01.sql adds them). A customer's
-- orders all hash to one shard, so the lookups and totals the shop makes
-- per customer stay on one server.
-- Run by analytics/shards.py:shards_setup as the cluster superuser: only a
-- superuser may create postgres_fdw, which can reach other servers.
CREATE EXTENSION IF NOT EXISTS postgres_fdw;
CREATE SCHEMA IF NOT EXISTS shards AUTHORIZATION shop_owner;

SET ROLE shop_owner;

CREATE TABLE IF NOT EXISTS shards.order_history (
    order_id bigint NOT NULL,
    customer_id bigint NOT NULL,
    status text NOT NULL,
    total numeric(12, 2) NOT NULL,
    created_at timestamptz NOT NULL
) PARTITION BY HASH (customer_id);

COMMENT ON TABLE shards.order_history IS
    'Final orders, moved off the primary: hash partitions on two shards '
    '(postgres_fdw, chapter 15). Made by manage.py shards setup.';

-- The app writes and reads the archive through this table only; its
-- partitions grant nothing, so no app query can write to the wrong shard.
-- No UPDATE: an archived order is final.
GRANT USAGE ON SCHEMA shards TO shop_app;
GRANT SELECT, INSERT, DELETE ON shards.order_history TO shop_app;

RESET ROLE;
