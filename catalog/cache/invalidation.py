"""What a write changed, and moving the versions of the entries that show it.

Two paths lead here. Writes Python makes (catalog/services.py, the admin)
call `catalog_changed()`, which moves the versions when the transaction
commits, before the response is sent: the next read, the writer's own
included, sees the change. Every write, those included and the ones Python
never sees (checkout's SQL, the PL/pgSQL checkout function, the release
procedure, psql), fires the triggers of catalog/sql/triggers/
cache_notify_v01.sql, whose NOTIFY `manage.py cache_listen` turns into the
same `versions_bump()` (catalog/cache/listener.py).
"""

import contextlib
import json
import logging
from dataclasses import dataclass

from django.conf import settings
from django.db import connections, transaction

from catalog.cache import store
from catalog.cache.store import CATEGORIES, GLOBAL, LISTS, Unavailable
from shop.replica import marker_keys, markers_failed

log = logging.getLogger("catalog.cache")

# More products than this in one change retire everything instead: one
# version for all rather than thousands (the triggers' limit too, which
# keeps their NOTIFY payload under PostgreSQL's 8000 bytes).
MAX_PRODUCTS = 300


@dataclass(frozen=True)
class Change:
    """What one write changed, as the cache's entries see it.

    `products`: their details and cards. `lists`: every list page (a
    product moved onto, off or along a list). `categories`: the tree.
    `everything`: all of it, for a change too large or unknown.
    """

    products: frozenset[int] = frozenset()
    lists: bool = False
    categories: bool = False
    everything: bool = False

    @classmethod
    def of(cls, products=(), *, lists=False, categories=False) -> "Change":
        products = frozenset(products)
        if len(products) > MAX_PRODUCTS:
            return cls(everything=True)
        return cls(products, lists=lists, categories=categories)

    @classmethod
    def from_payload(cls, payload: str) -> "Change":
        """A change as the triggers' NOTIFY describes it; everything if unreadable."""
        try:
            data = json.loads(payload)
            if data.get("everything"):
                return cls(everything=True)
            return cls.of(
                (int(i) for i in data.get("products", [])),
                lists=bool(data.get("lists")),
                categories=bool(data.get("categories")),
            )
        except (ValueError, TypeError, AttributeError):
            log.error("catalog cache: unreadable notification %r", payload)
            return cls(everything=True)

    def version_names(self) -> list[str]:
        if self.everything:
            return [GLOBAL]
        names = [store.product_version(i) for i in sorted(self.products)]
        if self.lists:
            names.append(LISTS)
        if self.categories:
            names.append(CATEGORIES)
        return names


EVERYTHING = Change(everything=True)


def versions_bump(change: Change, *, written: bool = True) -> None:
    """Retire the entries `change` makes wrong; Unavailable if Redis does not answer.

    For a write (`written`), each version it moves is marked as written
    (shop/replica.py, store.marker_scope) in the same script that moves it
    (store.bump), so one never lands without the other: a
    fill that sees a new version then also sees its marker, and reads the
    primary rather than a replica that may not have the write yet
    (catalog/cache/reads.py:_fill_reads). Only the fills of the entries the
    write retired read the primary; a reservation's sends one product's
    card and detail there, and leaves every other read on the replica.
    """
    names = change.version_names()
    if not names or not store.on_redis():
        return
    markers = marker_keys(*map(store.marker_scope, names)) if written else []
    try:
        store.bump(
            names,
            markers=markers,
            marker_seconds=settings.READ_YOUR_WRITES_SECONDS,
        )
    except Unavailable as exc:
        if written:
            markers_failed(exc)
        raise


def _bump_or_log(change: Change) -> None:
    try:
        versions_bump(change)
    except Unavailable as exc:
        # The listener moves the same versions from the write's NOTIFY, and
        # retires everything once Redis answers it again.
        log.warning("catalog cache: could not retire %s: %s", change, exc)


def catalog_changed(change: Change, *, using: str = "default") -> None:
    """Retire the cache's entries that a write made by Python changed.

    Call it after the write. Outside a transaction the write has committed,
    and the versions move now. Inside one, they move now and again when it
    commits: now, so that reads later in the same transaction do not get
    the entries from before it; at commit, because a request that filled an
    entry in between read the rows from before the commit, and the second
    move retires what it stored.
    """
    if change == Change():
        return
    _bump_or_log(change)
    if connections[using].in_atomic_block:
        transaction.on_commit(lambda: _bump_or_log(change), using=using)


def everything_forget() -> None:
    """Retire every entry of this database's catalog cache, for a fresh start.

    For tests and labs, whose database is rolled back or recreated under the
    cache: no write is behind it, so the catalog is not marked as written.
    Quiet when the cache is off or does not answer.
    """
    with contextlib.suppress(Unavailable):
        versions_bump(EVERYTHING, written=False)
