-- Delete one batch of completed idempotency keys older than the cut-off,
-- oldest first. The caller loops, one short transaction per batch, until a
-- batch comes back short: no long transaction, no lock held for long, and
-- the partial index orders_idem_key_completed_idx finds the batch
-- without reading the keys that stay. SKIP LOCKED leaves a key that a
-- request is reading or updating right now to the next run.
DELETE FROM orders_idempotency_key
WHERE id IN (
    SELECT id FROM orders_idempotency_key
    WHERE status = 'completed' AND updated_at < %(cutoff)s
    ORDER BY updated_at
    LIMIT %(batch_size)s
    FOR UPDATE SKIP LOCKED
)
