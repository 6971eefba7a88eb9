-- After MongoDB acknowledged the batch: shipped, in the transaction that
-- still holds the batch's locks, so no other relay took it meanwhile.
UPDATE shop_outbox_event
SET shipped_at = now()
WHERE id = ANY (%(ids)s::bigint[])
  AND shipped_at IS NULL
