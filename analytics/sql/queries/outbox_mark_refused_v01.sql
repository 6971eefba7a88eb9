-- MongoDB refused this event for good (a document its validator rejects, or
-- another event already in its aggregate's place): set it aside with the
-- reason, so that the relay stops retrying it and the events after it ship.
-- It stays in the outbox, never purged, until someone has looked.
UPDATE shop_outbox_event
SET refused_at = now(), refusal = %(refusal)s
WHERE event_id = %(event_id)s
  AND shipped_at IS NULL AND refused_at IS NULL
