-- Sent to the standby by /healthz: am I a standby, and how far behind?
-- Caught up (replayed everything received) means no lag, however long ago
-- the last commit was; otherwise, the age of the last replayed commit.
SELECT pg_is_in_recovery(),
       CASE
           WHEN pg_last_wal_receive_lsn() = pg_last_wal_replay_lsn() THEN 0
           ELSE COALESCE(
               EXTRACT(EPOCH FROM now() - pg_last_xact_replay_timestamp()), 0)
       END AS lag_seconds
