"""The catalog cache: Redis in front of the catalog's public pages, never stale.

Cache-aside. The category tree, each product list page and each product's
detail are JSON response bodies in Redis (catalog/cache/reads.py); a view
asks the cache and hands it the computation (its selector and serializer)
to run on a miss. A warm request sends no SQL at all. Checkout never reads
any of it: it counts stock on the rows it locks (orders/locks.py).

Versions, not deletes. Every entry is stored with the versions it was
computed under, and is served only while they are still the current ones:

    global          every entry (a listener that was away, a TRUNCATE)
    lists           the list pages' product ids and order
    categories      the tree
    product <id>    that product's detail and its card on the list pages

A write moves the versions of what it changed, so one write retires exactly
the entries that show it, and the next read of each computes it again. A
list page is two levels: its entry holds the page's product ids, stamped
with the list version, and each product's card is an entry of its own. A
reservation at checkout changes a product's availability, not which
products a list shows (unless it sells the last unit: the in_stock filter),
so it retires that product's card and detail, and no list page.

The versions live in Redis, read in the same round trips as the entries,
so checking them costs no SQL. Their values are ticks of one clock (a
Redis counter), never counters of their own: a lost version key reads as
0, and no tick is ever 0 or given twice, so nothing stored before can
become valid again.

Who moves them. Writes made through Python (catalog/services.py, the
admin) call invalidation.catalog_changed(), which moves them as the
transaction commits, before the response leaves: the staff member's next
read, and anyone's, shows the change. Writes Python never sees (checkout's
set-based SQL, the PL/pgSQL checkout function, the release procedure, a
psql session) are caught in the database: statement-level triggers on the
catalog's tables send NOTIFY catalog_changed with the product ids
(catalog/sql/triggers/cache_notify_v01.sql), delivered at commit and never
for a rollback, and `manage.py cache_listen` (listener.py) moves the same
versions. The triggers fire for the Python writes too, so the listener is
the guarantee and catalog_changed() the speed.

A fill never stores data older than its versions say. It reads the
versions before it reads the rows, and a write moves them only after it has
committed: a fill that raced a write stored its rows under the versions
from before it, which the write has since retired. A product's version
cannot be read before the rows (which products a page holds is only known
from them), so a fill reads the clock first, and stores a product's entry
only if that product's version is no newer than the clock it read.

Nor older than the write, on a replica. A request may read the replica
(shop/replica.py), which may not have replayed a write that already moved
the versions. So a write marks each version it moves as written
(read-your-writes markers, for READ_YOUR_WRITES_SECONDS) before it moves
it, and a fill asks for the markers of the versions its entry depends on
after it has read the versions: the tree the global and categories
versions, a list page's ids and a 404 the global and lists versions, a
card or a detail its product's. Whichever is marked is read (again) on
the primary: a reservation sends one product's card and detail there, and
every other fill stays on the replica.

The cache is on where Django's cache is Redis and CATALOG_CACHE is set
(shop/settings/base.py); with a local-memory cache (REDIS_URL empty) no
process could retire another's entries, so the catalog is read from the
database.

Stampedes: a miss takes a short lock on its key (SET NX PX), one request
fills the entry while the others wait and look again; at most a second one
fills it if the first outlives its lock. Redis down: every read goes to the
database, and after a failure this process leaves Redis alone for a second.
Hits, misses and fills are counted in Redis, for staff
(GET /api/v1/catalog/cache/stats/).

Trade-offs. Cards cost one more MGET per list page than whole pages in one
entry would, and keep a checkout from emptying every list of the cache. A
product's entries are retired by any change of the product, its variants
or its stock, even one a particular page does not show. A product written
again before each fill of it ends (a best seller during a sale) is not
stored, and its card is computed on every read until the writes pause. A
fill that misses costs a few more round trips to Redis than no cache at
all (the lock, the versions, the markers, the store: docs/benchmarks.md);
one that finds a product marked after the replica computed it computes
that product's card or detail again on the primary. Between a commit
and the listener's version move (milliseconds) a write made outside Python
is not yet on the pages; writes through the API are, at once.
"""

from catalog.cache.invalidation import (
    Change,
    catalog_changed,
    everything_forget,
    versions_bump,
)
from catalog.cache.reads import (
    ListPage,
    category_tree,
    product_detail,
    product_list_page,
)
from catalog.cache.store import (
    Unavailable,
    enabled,
    stats,
    stats_report,
    stats_reset,
)

__all__ = [
    "Change",
    "ListPage",
    "Unavailable",
    "catalog_changed",
    "category_tree",
    "enabled",
    "everything_forget",
    "product_detail",
    "product_list_page",
    "stats",
    "stats_report",
    "stats_reset",
    "versions_bump",
]
