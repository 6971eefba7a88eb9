-- The roles of the primary that may reach a shard, and as whom they log in
-- there (analytics/shards.py:shards_setup): the app, and the owner, who
-- runs the labs' DDL. A password even on 127.0.0.1: postgres_fdw lets a
-- role that is not a superuser connect only where the shard asked for one,
-- so that no role borrows the primary's own identity on another server.
-- The password is in the statements' text, so they run alone, kept out of
-- the server log (pgaudit logs DDL with its whole query string, chapter 23)
-- and out of pg_stat_statements; the setup's other statements are logged.
SET LOCAL pgaudit.log = 'none';
SET LOCAL pg_stat_statements.track_utility = off;
CREATE USER MAPPING FOR shop_app SERVER {server}
    OPTIONS (user {user}, password {password});
CREATE USER MAPPING FOR shop_owner SERVER {server}
    OPTIONS (user {user}, password {password});
RESET pgaudit.log;
RESET pg_stat_statements.track_utility;
