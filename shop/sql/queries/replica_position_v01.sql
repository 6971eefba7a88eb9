-- Sent to the standby by the read-replica router's probe (shop/replica.py),
-- with the primary's WAL position read just before:
--   in_recovery      is this server a standby at all (a promoted one is not
--                    a copy of our primary any more);
--   bytes_behind     WAL the primary had written that this standby has not
--                    replayed yet; zero or less means it had caught up;
--   last_commit_age  seconds since the last commit it replayed was made on
--                    the primary. An upper bound of how stale it is, and a
--                    loose one after a quiet spell: with no commits on the
--                    primary it grows although nothing is missing, which is
--                    why bytes_behind is asked first.
SELECT pg_is_in_recovery() AS in_recovery,
       pg_wal_lsn_diff(%(primary_lsn)s::pg_lsn, pg_last_wal_replay_lsn())
           AS bytes_behind,
       EXTRACT(EPOCH FROM clock_timestamp() - pg_last_xact_replay_timestamp())
           AS last_commit_age
