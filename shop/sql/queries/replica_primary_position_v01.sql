-- Sent to the primary by the read-replica router's probe (shop/replica.py),
-- just before it asks the standby how far it has replayed: every commit
-- that has returned to a client ends at or before this WAL position.
SELECT pg_current_wal_lsn() AS primary_lsn
