-- The relay's batch: the oldest pending events, locked until the relay's
-- transaction ends (analytics/relay.py). Two relays at once take disjoint
-- batches, and neither ships an aggregate's events out of order:
--
--   FOR UPDATE SKIP LOCKED   a row another relay holds is passed over, not
--                            waited for, and never taken twice
--   the advisory lock        one relay at a time per aggregate. Without it, a
--                            second relay could skip an aggregate's event 4,
--                            locked by the first, and ship its event 5 before
--                            the first has shipped 4. The lock is the
--                            transaction's (xact): it ends with the COMMIT
--                            that marks the batch shipped.
--
-- The advisory lock is tried for each row the scan meets, in position order,
-- so a relay that holds an aggregate holds its events from the oldest on:
-- an aggregate's earlier event always has the smaller position, since its
-- sequence row serializes the transactions that write its events. Key:
-- (a fixed number naming the relay's locks, a hash of the aggregate); two
-- aggregates sharing a hash only wait for each other, never mix up.
--
-- %(only)s is NULL but for the lab `outbox` (chapter 21), which ships only
-- its own aggregates' events ('stock_level:42', ...), so that it never marks
-- another event shipped to the store it demonstrates with. A NULL there is
-- folded away when the statement is planned.
SELECT id, event_id, type, aggregate_type, aggregate_id, sequence,
       customer_id, occurred_at, payload
FROM shop_outbox_event
WHERE shipped_at IS NULL AND refused_at IS NULL
  AND (%(only)s::text[] IS NULL
       OR aggregate_type || ':' || aggregate_id = ANY (%(only)s::text[]))
  AND pg_try_advisory_xact_lock(
          %(lock_space)s, hashtext(aggregate_type || ':' || aggregate_id))
ORDER BY id
LIMIT %(limit)s
FOR UPDATE SKIP LOCKED
