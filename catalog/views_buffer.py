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
import uuid

from django.conf import settings
from django.utils import timezone

from catalog.cache import store


def buffer_key() -> str:
    """The buffer of this database's views (store.key: test runs, benchmarks
    and the development server may share one Redis)."""
    return store.key("product-views", "v1")


def record_view(*, product_id: int, user_id: int | None) -> bool:
    """Buffer one view; False if it could not be (and the page goes on).

    Through the catalog cache's Redis access (catalog/cache/store.py): a
    cache that is not Redis records nothing, and after a Redis failure this
    process leaves Redis alone for a moment, so an unreachable server costs
    one request its timeout, not every product page.
    """
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
    key = buffer_key()
    try:
        with store.redis() as redis:
            pipe = redis.pipeline(transaction=False)
            pipe.rpush(key, entry)
            pipe.ltrim(key, -settings.VIEW_BUFFER_MAX, -1)
            pipe.execute()
    except store.Unavailable:
        return False
    return True
