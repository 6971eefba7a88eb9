-- One shard's part of the order archive (chapter 15), run in the shard's
-- database by analytics/shards.py:shards_setup, as the shard's superuser.
-- The table belongs to shop_shard, the role the primary's user mappings log
-- in as. Nothing here knows which hash remainder the shard holds: the
-- primary routes, and a row written here directly is never checked against
-- the partition it should be in.

-- The sharding lab counts the statements postgres_fdw sends here (batched
-- INSERTs, remote EXPLAINs); the server preloads the module
-- (scripts/services.sh).
CREATE EXTENSION IF NOT EXISTS pg_stat_statements;

SET ROLE shop_shard;

CREATE TABLE IF NOT EXISTS order_history (
    order_id bigint NOT NULL,
    customer_id bigint NOT NULL,
    -- Only final orders are archived; a pending one still changes.
    status text NOT NULL
        CONSTRAINT order_history_status_final
        CHECK (status IN ('paid', 'failed', 'cancelled')),
    total numeric(12, 2) NOT NULL
        CONSTRAINT order_history_total_non_negative CHECK (total >= 0),
    created_at timestamptz NOT NULL,
    -- Unique on this shard only: no constraint spans two shards. Checked at
    -- this shard's COMMIT (DEFERRABLE INITIALLY DEFERRED), which the archive
    -- does not need and the sharding lab does: a duplicate then fails the
    -- COMMIT that the primary sends only when its own transaction commits,
    -- as a crash or a full disk on one shard would.
    CONSTRAINT order_history_pkey PRIMARY KEY (order_id)
        DEFERRABLE INITIALLY DEFERRED
);

-- A customer's archived orders, newest first: the lookup the hash on
-- customer_id sends to one shard.
CREATE INDEX IF NOT EXISTS order_history_customer_idx
    ON order_history (customer_id, created_at DESC);

RESET ROLE;
