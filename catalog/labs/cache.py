"""Lab `cache` (18): the catalog cache, warm with no SQL, and told of every commit.

A product's page is read through the cache twice (SQL counted), a write in
SQL is rolled back and then committed while a session LISTENs on
catalog_changed, and the versions the notification names are moved, as
`manage.py cache_listen` does: the next read is fresh, and each version
moved is marked as written (the read-your-writes markers that send the
fills of its entries to the primary).

NOTIFY is delivered only on COMMIT, so this lab commits its catalogue rows
(a category, a product with one variant, a warehouse: no stock, so no
stock ledger rows) and deletes them in `finally`, retiring their entries
the same way.
"""

from django.db import connection
from django.test.utils import CaptureQueriesContext

from catalog import cache as catalog_cache
from catalog import selectors
from catalog.api.serializers import ProductDetailOutput
from catalog.cache import Change, store, versions_bump
from catalog.cache.listener import CHANNEL
from catalog.labs.rows import catalog_names, catalog_rows
from shop.lab import LabFailed, Narrator, connect, lab
from shop.replica import written_among

TAG = "cache"
DELETE_ROWS = """
WITH variants AS (
    DELETE FROM catalog_product_variant
    WHERE product_id IN (SELECT id FROM catalog_product WHERE slug = %(slug)s)
), products AS (
    DELETE FROM catalog_product WHERE slug = %(slug)s RETURNING id
), categories AS (
    DELETE FROM catalog_category WHERE slug = %(slug)s
), warehouses AS (
    DELETE FROM catalog_warehouse WHERE code = %(code)s
)
SELECT id AS product_id FROM products
"""


@lab(
    "cache",
    chapter="18",
    summary="The catalog cache: no SQL when warm, and retired by NOTIFY at commit",
)
def cache(n: Narrator) -> None:
    if not catalog_cache.enabled():
        raise LabFailed(
            "The catalog cache is off: Django's cache is not Redis (REDIS_URL is "
            "empty). Start Redis (scripts/services.sh up) and unset REDIS_URL."
        )
    names = catalog_names(TAG)
    with connect(autocommit=False) as writer, connect(autocommit=True) as listener:
        # A run that was killed left its rows: start from none.
        writer.execute(DELETE_ROWS, names)
        writer.commit()
        try:
            product_id = _rows(n, writer)
            n.step("The LISTEN session (what `manage.py cache_listen` holds open)")
            n.sql(f"LISTEN {CHANNEL}", cursor=listener.cursor())
            _warm_read(n, names["slug"])
            _notified_at_commit(n, writer, listener, product_id, names)
        finally:
            writer.rollback()  # whatever a failed step left open
            gone = [row[0] for row in writer.execute(DELETE_ROWS, names).fetchall()]
            writer.commit()
            # No listener runs here: retire the deleted product's entries as
            # it would have.
            versions_bump(Change.of(gone, lists=True, categories=True))


def _rows(n: Narrator, writer) -> int:
    n.step("A product of the lab's own, committed (NOTIFY needs a COMMIT)")
    (row,) = catalog_rows(n, TAG, on_hand=None, cursor=writer.cursor())
    writer.commit()
    n.say("    COMMIT")
    return row.product_id


def _read(n: Narrator, slug: str, label: str) -> dict:
    """The product's page as the API's view reads it; shows the SQL it sent."""

    def compute():
        return ProductDetailOutput(selectors.product_get(slug=slug)).data

    with CaptureQueriesContext(connection) as captured:
        body = catalog_cache.product_detail(slug=slug, compute=compute)
    statements = len(captured.captured_queries)
    n.say(f"    {label}: price {body['price']}, {statements} SQL statement(s)")
    body["statements"] = statements
    return body


def _warm_read(n: Narrator, slug: str) -> None:
    n.step("Cache-aside: the first read computes and stores, the second sends no SQL")
    cold = _read(n, slug, "first read")
    warm = _read(n, slug, "second read")
    entry = store.decode(store.get(f"detail:{slug}"))  # what the second read found
    n.say(f"    the entry {store.key(f'detail:{slug}')} is stamped {entry['v']}")
    n.say("    (the global version and the product's, current when it was computed)")
    n.expect(cold["statements"] > 0, "the first read ran SQL and stored its answer")
    n.expect(warm["statements"] == 0, "the second read ran no SQL at all")


def _notified_at_commit(n: Narrator, writer, listener, product_id, names) -> None:
    change_price = (
        "UPDATE catalog_product_variant SET price = price + 1 "
        "WHERE product_id = %(product_id)s"
    )
    params = {"product_id": product_id}

    n.step("A write in SQL, rolled back: the triggers' NOTIFY is never delivered")
    n.sql(change_price, params, cursor=writer.cursor())
    writer.rollback()
    n.say("    ROLLBACK")
    heard = [note.payload for note in listener.notifies(timeout=0.5)]
    n.say(f"    the LISTEN session received: {heard}")
    n.expect(heard == [], "a rolled-back write notifies nobody")

    n.step("The same write, committed: the LISTEN session hears which product changed")
    n.sql(change_price, params, cursor=writer.cursor())
    writer.commit()
    n.say("    COMMIT")
    heard = [note.payload for note in listener.notifies(timeout=0.5)]
    for payload in heard:
        n.say(f"    catalog_changed: {payload}")
    changes = [Change.from_payload(payload) for payload in heard]
    n.expect(
        any(product_id in change.products for change in changes),
        f"a notification names product {product_id}",
    )
    n.expect(
        any(change.lists for change in changes),
        "a new price changes min_price, which orders the lists: they go too",
    )
    stale = _read(n, names["slug"], "read before the listener's work")
    n.expect(stale["statements"] == 0, "until the versions move, the old entry holds")

    n.step("The listener's work: move the versions the notifications name")
    for change in changes:
        versions_bump(change)
        n.say(f"    moved {', '.join(change.version_names())}")
    moved = sorted({name for change in changes for name in change.version_names()})
    asked = [*moved, store.CATEGORIES]
    marked = written_among([store.marker_scope(name) for name in asked])
    for name in asked:
        state = "set" if store.marker_scope(name) in marked else "none"
        n.say(f"    read-your-writes marker of {name}: {state}")
    n.expect(
        all(store.marker_scope(name) in marked for name in moved),
        "each version moved was marked as written first: for "
        "READ_YOUR_WRITES_SECONDS the fills of its entries read the primary, "
        "every other fill the replica",
    )
    fresh = _read(n, names["slug"], "read after")
    n.expect(fresh["statements"] > 0, "the entry was retired: computed again")
    n.expect(fresh["price"] == "20.90", "the page shows the committed price")
