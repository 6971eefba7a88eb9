"""Product views, buffered in Redis on the way to the event log.

A view is an event (`product.viewed`), but the product page is the hottest,
cached read of the shop: a warm request makes no SQL query at all, and an
INSERT per view on the primary would undo that. So a view is one RPUSH to
a Redis list, in the same round trip as a trim that bounds the list, and a
task moves the list into the outbox in batches
(analytics/product_views.py: product_views_flush), from where the relay
ships them like any event.

Views are counted on a best-effort basis, unlike business events: with
Redis down, or with no Redis configured, a view is not recorded and the
page is served all the same (tests/analytics/test_product_views.py). The
buffer keeps the newest VIEW_BUFFER_MAX views if the flush stops running.
"""

import json
import logging
import time
import uuid

from django.conf import settings
from django.utils import timezone

from shop.cache import REDIS_ERRORS

log = logging.getLogger(__name__)

BUFFER_KEY = "shop:product-views:v1"
LOG_EVERY = 60.0
_logged_at = [0.0]


def buffer():
    """The Redis connection the buffer lives on: the cache's own."""
    from django_redis import get_redis_connection

    return get_redis_connection("default")


def record_view(*, product_id: int, user_id: int | None) -> bool:
    """Buffer one view; False if it could not be (and the page goes on)."""
    if not settings.REDIS_ENABLED:
        return False
    entry = json.dumps(
        {
            # The event's id from the start: a view handed over twice is
            # stored once (shop_outbox_append skips a known event_id).
            "id": str(uuid.uuid4()),
            "product_id": product_id,
            # The user, not the customer: finding the customer would be a
            # query on this cached path. The flush maps users to customers
            # in one statement per batch.
            "user_id": user_id,
            "at": timezone.now().isoformat(),
        }
    )
    try:
        redis = buffer()
    except NotImplementedError:  # the cache is not django-redis's (a test's)
        return False
    try:
        pipe = redis.pipeline(transaction=False)
        pipe.rpush(BUFFER_KEY, entry)
        pipe.ltrim(BUFFER_KEY, -settings.VIEW_BUFFER_MAX, -1)
        pipe.execute()
    except REDIS_ERRORS as exc:
        now = time.monotonic()
        if now - _logged_at[0] > LOG_EVERY:
            _logged_at[0] = now
            log.warning("product views are not recorded while Redis fails: %s", exc)
        return False
    return True
