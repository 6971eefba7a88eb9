"""The product-view flush: Redis's buffer into the outbox, a batch at a time.

catalog/views_buffer.py records each view with one RPUSH; this moves them,
oldest first, into the outbox, from where the relay ships them to the event
log's expiring `product_views` collection. One batch:

    1. read the oldest `limit` entries (LRANGE), leaving them in the list
    2. append them to the outbox in one statement, and COMMIT
    3. only then drop them from the list (LTRIM)

A crash between 2 and 3 hands the same entries over again next time; each
carries its event id from the start, and shop_outbox_append skips an id it
holds, so a view is never counted twice. One flush at a time, from 1 to 3:
a Redis lock (not an advisory lock, which a COMMIT or pgbouncer's
transaction pooling would release before the LTRIM), since two flushes
would read the same entries and each trim its count off the list, the
second dropping views nobody flushed. The lock expires after
VIEW_FLUSH_LOCK_SECONDS, in case a flush dies holding it.

An entry that is not a view (bad JSON, a missing product id) is logged and
dropped, not retried: retried, it would stop every batch behind it.

Known limit: with the buffer at VIEW_BUFFER_MAX (the flush stopped for a
long while), each new view trims the oldest entry, so a flush then running
may trim a few entries it did not read. Views are then being dropped by
design already; business events never go through this buffer.
"""

import json
import logging
import uuid
from datetime import datetime

from django.conf import settings
from django.db import connection
from redis.exceptions import LockError

from catalog.cache import store
from catalog.views_buffer import buffer_key
from shop.db_context import job_transaction
from shop.sql_files import read_sql

log = logging.getLogger(__name__)

FLUSH_JOB = "product_views_flush"
LOCK_NAME = "flush-lock:"
VIEW_FLUSH_LOCK_SECONDS = 60


def product_views_flush(*, limit: int | None = None, max_batches: int = 20) -> int:
    """Move buffered views into the outbox; return how many."""
    limit = limit or settings.VIEW_FLUSH_BATCH
    moved = 0
    for _ in range(max_batches):
        try:
            batch = _flush_batch(limit)
        except store.Unavailable as exc:
            log.warning("product views wait in Redis; it does not answer: %s", exc)
            break
        if batch is None:  # another flush holds the lock
            break
        moved += batch
        if batch < limit:
            break
    return moved


def _flush_batch(limit: int) -> int | None:
    """One batch; None if another flush holds the lock. Unavailable if Redis fails."""
    key = buffer_key()
    with store.redis() as redis:
        lock = redis.lock(LOCK_NAME + key, timeout=VIEW_FLUSH_LOCK_SECONDS)
        if not lock.acquire(blocking=False):
            return None  # another flush is at work
        try:
            entries = redis.lrange(key, 0, limit - 1)
            if not entries:
                return 0
            views = [view for view in map(_view, entries) if view is not None]
            if views:
                with job_transaction(FLUSH_JOB), connection.cursor() as cursor:
                    cursor.execute(
                        read_sql("analytics/sql/queries/product_views_append_v01.sql"),
                        {"views": json.dumps(views)},
                    )
            # After COMMIT, still under the lock: no other flush took these
            # entries. A crash before this line hands them over again,
            # harmlessly.
            redis.ltrim(key, len(entries), -1)
            return len(entries)
        finally:
            try:
                lock.release()
            except LockError:  # expired meanwhile: another flush may hold it
                log.warning("the product-view flush outlived its lock")


def _bigint(value) -> int:
    """An id as PostgreSQL's bigint takes it; ValueError otherwise."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError(f"not an id: {value!r}")
    if not 0 < value < 2**63:
        raise ValueError(f"out of range: {value}")
    return value


def _view(entry: bytes) -> dict | None:
    """A buffered view as the flush's SQL reads it; None if it is not one."""
    try:
        view = json.loads(entry)
        user_id = view.get("user_id")
        found = {
            "id": str(uuid.UUID(view["id"])),
            "product_id": _bigint(view["product_id"]),
            "user_id": None if user_id is None else _bigint(user_id),
            "at": datetime.fromisoformat(view["at"]).isoformat(),
        }
        return found
    except (ValueError, TypeError, KeyError) as exc:
        log.error(
            "dropping a buffered product view that is not one: %r (%s)",
            entry[:200],
            exc,
        )
        return None
