"""The product-view flush: Redis's buffer into the outbox, a batch at a time.

catalog/views_buffer.py records each view with one RPUSH; this moves them,
oldest first, into the outbox, from where the relay ships them to the event
log's expiring `product_views` collection. One batch:

    1. read the oldest `limit` entries (LRANGE), leaving them in the list
    2. append them to the outbox in one statement, and COMMIT
    3. only then drop them from the list (LTRIM)

A crash between 2 and 3 hands the same entries over again next time; each
carries its event id from the start, and shop_outbox_append skips an id it
holds, so a view is never counted twice. One flush at a time (an advisory
lock): two would read the same entries, and each would then trim its count
off the list, the second dropping views nobody flushed.
"""

import json
import logging

from django.conf import settings
from django.db import connection

from catalog.views_buffer import BUFFER_KEY, buffer
from shop.cache import REDIS_ERRORS
from shop.db_context import job_transaction
from shop.sql_files import read_sql

log = logging.getLogger(__name__)

FLUSH_JOB = "product_views_flush"
# The flush's advisory lock: (the relay's lock space, 2).
LOCK_KEY = (21_0001, 2)


def product_views_flush(*, limit: int | None = None, max_batches: int = 20) -> int:
    """Move buffered views into the outbox; return how many."""
    if not settings.REDIS_ENABLED:
        return 0
    limit = limit or settings.VIEW_FLUSH_BATCH
    moved = 0
    for _ in range(max_batches):
        try:
            batch = _flush_batch(limit)
        except REDIS_ERRORS as exc:
            log.warning("product views wait in Redis; it does not answer: %s", exc)
            break
        if batch is None:  # another flush holds the lock
            break
        moved += batch
        if batch < limit:
            break
    return moved


def _flush_batch(limit: int) -> int | None:
    try:
        redis = buffer()
    except NotImplementedError:  # the cache is not django-redis's: no buffer
        return None
    with job_transaction(FLUSH_JOB), connection.cursor() as cursor:
        cursor.execute("SELECT pg_try_advisory_xact_lock(%s, %s)", LOCK_KEY)
        if not cursor.fetchone()[0]:
            return None
        entries = redis.lrange(BUFFER_KEY, 0, limit - 1)
        if not entries:
            return 0
        views = [json.loads(entry) for entry in entries]
        cursor.execute(
            read_sql("analytics/sql/queries/product_views_append_v01.sql"),
            {"views": json.dumps(views)},
        )
    # After COMMIT, and still the only flush: no other took these entries.
    # A crash before this line hands them over again, harmlessly.
    redis.ltrim(BUFFER_KEY, len(entries), -1)
    return len(entries)
