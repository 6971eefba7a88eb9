-- One shard as the primary sees it (analytics/shards.py:shards_setup): a
-- foreign server, and the foreign table that is its partition of
-- shards.order_history. archive_mapping_v01.sql adds the user mappings.
-- DDL takes no bound parameters: psycopg.sql fills in the braced names,
-- quoting each as an identifier or a literal.
-- Re-running replaces the server and what hangs on it (the partition, the
-- mappings), in the setup's one transaction: they hold no rows (those live
-- on the shard), and a changed port or password takes effect.

DROP SERVER IF EXISTS {server} CASCADE;

CREATE SERVER {server} FOREIGN DATA WRAPPER postgres_fdw OPTIONS (
    host {host},
    port {port},
    dbname {dbname},
    -- TLS and a verified certificate, as the app's own connections
    -- (shop/settings/base.py: DB_SSLMODE, DB_SSLROOTCERT).
    sslmode {sslmode},
    sslrootcert {sslrootcert},
    -- A routed INSERT of many rows goes out 100 rows per statement instead
    -- of one statement per row (the sharding lab counts them).
    batch_size '100'
);

-- The owner creates the partition, and may add or change one later.
GRANT USAGE ON FOREIGN SERVER {server} TO shop_owner;
SET ROLE shop_owner;
CREATE FOREIGN TABLE {partition}
    PARTITION OF shards.order_history
    FOR VALUES WITH (MODULUS {modulus}, REMAINDER {remainder})
    SERVER {server}
    OPTIONS (schema_name 'public', table_name 'order_history');
RESET ROLE;
