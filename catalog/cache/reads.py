"""Cache-aside reads of the catalog's pages: the tree, list pages, product details.

Each function takes the computation of what it caches (the view's selector
and serializer, run only on a miss) and returns the response body: from
Redis when a valid entry is there, else computed, stored and returned.
With Redis unavailable it returns the computation's result and stores
nothing. The package's docstring (catalog/cache/__init__.py) explains the
versions, and why a fill never stores data older than its versions say.

A hit costs one round trip to Redis for the tree, two for a detail or a
list page (the entry, then the versions of the products it names); the
count of lookups travels with the first.
"""

import hashlib
import json
import time
from collections.abc import Callable
from contextlib import contextmanager
from dataclasses import dataclass

from catalog.cache import store
from catalog.cache.store import CATEGORIES, CLOCK, GLOBAL, LISTS, Unavailable
from shop.replica import PRIMARY, read_alias, reads_from_primary, written_among

# Seconds between two looks of a request waiting for another's fill.
WAIT_POLL = 0.01
# Seconds a request waits for other requests' fills of its entry before it
# computes the answer itself. Longer than a lock lives, so a holder that
# died is first replaced by one new holder.
WAIT_LIMIT = 2 * store.LOCK_TTL_MS / 1000


@contextmanager
def _fill_reads(*names: str):
    """Read a fill's rows where they are at least as new as its versions.

    `names`: the versions the fill's entry depends on, besides GLOBAL.
    Yields whether the rows are read on the primary.

    A request may read the replica (shop/middleware.py decides once, as it
    starts, and only by its own client's writes). A writer marks each
    version it moves before it moves it
    (catalog/cache/invalidation.py:versions_bump), and the fill read the
    versions before it asks for the markers: if it saw a write's new
    version, it sees that write's marker, and reads the primary. A marker
    gone means the write is older than READ_YOUR_WRITES_SECONDS, further
    back than the replica may lag. A fill that saw an older version stamps
    its entry with it, and the write's move retires the entry anyway.
    """
    if read_alias() == PRIMARY:
        # The request reads the primary already: no marker to ask for.
        yield True
        return
    scopes = [store.marker_scope(name) for name in (GLOBAL, *names)]
    if written_among(scopes):
        with reads_from_primary():
            yield True
    else:
        yield False


def _written_products(product_ids: list[int], *, or_global=False) -> set[int]:
    """The products among these whose own version was written lately, in one MGET.

    With `or_global`, all of them if the global version was. Asked after
    the fill read the clock: a product version it may stamp
    (_product_stamps) was set before that, and marked before it was set,
    so its marker shows here; it may be asked after the rows were read,
    for the products a fill knows only from them (a page's cards, a
    detail's body).
    """
    if not product_ids or read_alias() == PRIMARY:
        return set()
    scopes = {
        store.marker_scope(store.product_version(product_id)): product_id
        for product_id in product_ids
    }
    everything = store.marker_scope(GLOBAL)
    written = written_among([*scopes, everything] if or_global else scopes)
    if everything in written:
        return set(product_ids)
    return {scopes[scope] for scope in written}


def _cards_as_new_as_writes(
    found: list[dict], cards: Callable[[list[int]], list[dict]]
) -> list[dict]:
    """`found`, with the cards of products written lately computed on the primary.

    A product unlisted since has no card there, and leaves the answer.
    """
    written = _written_products([card["id"] for card in found])
    if not written:
        return found
    with reads_from_primary():
        again = cards(sorted(written))
    return [card for card in found if card["id"] not in written] + again


def _single_flight(kind: str, name: str, lookup: Callable, fill: Callable):
    """`lookup()`'s value, or else `fill()`'s, with one fill at a time.

    However many requests miss the same entry together, one takes its lock
    and fills it while the others look again every WAIT_POLL seconds. A
    second fill happens only when the first holder outlives its lock
    (LOCK_TTL_MS) or could not store what it computed (a write overtook
    it); after WAIT_LIMIT a request stops waiting and computes for itself.
    `fill()` looks once more before it computes: the entry may have been
    stored between this request's look and its lock.
    """
    value = lookup()
    if value is not None:
        return value
    deadline = time.monotonic() + WAIT_LIMIT
    token = store.lock_acquire(name, missed=kind)
    while token is None:
        if time.monotonic() >= deadline:
            return fill()
        time.sleep(WAIT_POLL)
        value = lookup()
        if value is not None:
            return value
        token = store.lock_acquire(name)
    try:
        return fill()
    finally:
        store.lock_release(name, token)


def _read_through(kind: str, name: str, lookup: Callable, fill: Callable, compute):
    if not store.enabled():
        return compute()
    try:
        return _single_flight(kind, name, lookup, fill)
    except Unavailable:
        return compute()


def _mget(client, names: list[str], *, count: str | None = None) -> list:
    """MGET `names`; with `count`, count a lookup of that kind in the same trip."""
    if count is None:
        return store.mget(client, names)
    pipe = client.pipeline(transaction=False)
    pipe.incr(store.stat_key(count, "lookups"))
    pipe.mget([store.key(n) for n in names])
    return pipe.execute()[1]


class _Lookups:
    """Counts the first lookup of a read only, however often it looks."""

    def __init__(self, kind: str):
        self.kind = kind
        self.counted = False

    def next(self) -> str | None:
        if self.counted:
            return None
        self.counted = True
        return self.kind


# --- The category tree ------------------------------------------------------


def category_tree(*, compute: Callable[[], list]) -> list:
    """The category tree's body, stamped with the global and tree versions."""
    name = "tree"
    lookups = _Lookups("categories")

    def read():
        """(versions, the valid body or None)."""
        with store.redis() as client:
            raw = _mget(client, [GLOBAL, CATEGORIES, name], count=lookups.next())
        versions = [store.version_of(raw[0]), store.version_of(raw[1])]
        entry = store.decode(raw[2])
        valid = entry is not None and entry["v"] == versions
        return versions, entry["body"] if valid else None

    def fill():
        versions, body = read()
        if body is None:
            with _fill_reads(CATEGORIES):
                body = compute()
            store.put_many({name: {"v": versions, "body": body}}, fill_of="categories")
        return body

    return _read_through("categories", name, lambda: read()[1], fill, compute)


# --- Product details --------------------------------------------------------

# A cached 404 found: not None, which means "not in the cache".
_MISSING = {"missing": True}


def product_detail(*, slug: str, compute: Callable[[], dict | None]) -> dict | None:
    """A listed product's detail body by slug; None if no listed product has it.

    An entry is stamped with the global version and its product's; a
    "missing" entry (a 404) with the global and list versions, which every
    write that can make a slug answer moves (a new product, one put on sale,
    a slug changed).
    """
    name = f"detail:{slug}"
    lookups = _Lookups("detail")

    def read():
        """(global, lists and clock versions, the valid body, _MISSING or None)."""
        with store.redis() as client:
            raw = _mget(client, [GLOBAL, LISTS, CLOCK, name], count=lookups.next())
            g, lists, clock = map(store.version_of, raw[:3])
            entry = store.decode(raw[3])
            if entry is None:
                return (g, lists, clock), None
            if "missing" in entry:
                found = _MISSING if entry["v"] == [g, lists] else None
                return (g, lists, clock), found
            (version,) = store.mget(client, [store.product_version(entry["id"])])
        valid = entry["v"] == [g, store.version_of(version)]
        return (g, lists, clock), entry["body"] if valid else None

    def fill():
        (g, lists, clock), found = read()
        if found is not None:
            return found
        # A 404 depends on the lists (which slugs answer); a body on its
        # product too, known only once the body is there.
        with _fill_reads(LISTS) as on_primary:
            body = compute()
        if body is not None and not on_primary and _written_products([body["id"]]):
            with reads_from_primary():
                body = compute()
        if body is None:
            entry = {"v": [g, lists], "missing": True}
            store.put_many({name: entry}, fill_of="detail")
            return _MISSING
        stamps = _product_stamps([body["id"]], clock)
        entries = {}
        if body["id"] in stamps:
            entries[name] = {
                "v": [g, stamps[body["id"]]],
                "id": body["id"],
                "body": body,
            }
        store.put_many(entries, fill_of="detail")
        return body

    found = _read_through("detail", name, lambda: read()[1], fill, compute)
    return None if found is _MISSING else found


def _product_stamps(product_ids: list[int], clock: int) -> dict[int, int]:
    """The versions to stamp these products' new entries with, where allowed.

    Read after the rows were: which products a fill holds is only known
    from them. A version may stamp an entry only if it was set before the
    fill read `clock`, which came before the rows; a version set later may
    be a write's that the rows do not show yet, so that product's entry is
    not stored (the answer still uses it: it is as new as the request).
    """
    if not product_ids:
        return {}
    try:
        with store.redis() as client:
            raw = store.mget(client, [store.product_version(i) for i in product_ids])
    except Unavailable:
        return {}
    versions = map(store.version_of, raw)
    return {
        product_id: version
        for product_id, version in zip(product_ids, versions, strict=True)
        if version <= clock
    }


# --- Product list pages -----------------------------------------------------


@dataclass(frozen=True)
class ListPage:
    """One page of the product list: its cards, and the cursors of its neighbours.

    A cursor is the value of the `cursor` parameter, "" for the first page
    (the parameter removed) and None for no such page.
    """

    cards: list[dict]
    next: str | None
    previous: str | None


def list_key(query: dict) -> str:
    """The entry of one list page: every parameter that decides its rows."""
    canonical = json.dumps(query, sort_keys=True, default=str)
    return f"list:{hashlib.sha256(canonical.encode()).hexdigest()[:32]}"


def product_list_page(
    *,
    query: dict,
    page: Callable[[], ListPage],
    cards: Callable[[list[int]], list[dict]],
) -> ListPage:
    """One page of the product list, in two levels of entries.

    The page's entry holds its product ids and cursors, stamped with the
    global and list versions: only writes that can move a product onto, off
    or along a list retire it. Each product's card (name, price,
    availability) is an entry of its own, stamped with the product's
    version and shared by every page that shows it. A reservation at
    checkout retires the cards of the products it reserved, and no page.

    `page()` computes the whole page, cards included, in one query;
    `cards(ids)` the cards of some listed products, for a page whose entry
    holds but not all of whose cards do.
    """
    name = list_key(query)
    lookups = _Lookups("list")

    def read():
        """(global and clock versions, the page's valid entry or None, {id: card})."""
        with store.redis() as client:
            raw = _mget(client, [GLOBAL, LISTS, CLOCK, name], count=lookups.next())
            g, lists, clock = map(store.version_of, raw[:3])
            entry = store.decode(raw[3])
            if entry is None or entry["v"] != [g, lists]:
                return (g, lists, clock), None, {}
            ids = entry["ids"]
            raw = store.mget(
                client,
                [f"card:{i}" for i in ids] + [store.product_version(i) for i in ids],
            )
        valid = {}
        for product_id, card, version in zip(
            ids, raw[: len(ids)], raw[len(ids) :], strict=True
        ):
            card = store.decode(card)
            if card is not None and card["v"] == [g, store.version_of(version)]:
                valid[product_id] = card["body"]
        return (g, lists, clock), entry, valid

    def lookup():
        _, entry, valid = read()
        if entry is None or len(valid) < len(entry["ids"]):
            return None
        return _page_of(entry, valid)

    def fill():
        (g, lists, clock), entry, valid = read()
        if entry is None:
            # Which products, in which order: the lists' version. Their
            # cards: each product's, asked for once the rows name them.
            with _fill_reads(LISTS) as on_primary:
                answer = page()
            entry = {
                "v": [g, lists],
                "ids": [card["id"] for card in answer.cards],
                "next": answer.next,
                "previous": answer.previous,
            }
            entries = {name: entry}
            fresh_cards = answer.cards
            if not on_primary:
                fresh_cards = _cards_as_new_as_writes(fresh_cards, cards)
        else:
            # The page holds; some of its cards went (a reservation, a new
            # price): compute those alone, on the primary for the products
            # written lately (usually all of them) and on the replica for
            # the rest (an entry evicted, a fill that stored nothing).
            missing = [i for i in entry["ids"] if i not in valid]
            if not missing:
                return _page_of(entry, valid)
            written = _written_products(missing, or_global=True)
            fresh_cards = []
            if written:
                with reads_from_primary():
                    fresh_cards += cards([i for i in missing if i in written])
            if len(written) < len(missing):
                fresh_cards += cards([i for i in missing if i not in written])
            entries = {}
        # A product unlisted meanwhile has no card: it leaves this answer,
        # and the page's entry goes when the list version moves.
        answer = _page_of(entry, {**valid, **{c["id"]: c for c in fresh_cards}})
        stamps = _product_stamps([card["id"] for card in fresh_cards], clock)
        for card in fresh_cards:
            if card["id"] in stamps:
                entries[f"card:{card['id']}"] = {
                    "v": [g, stamps[card["id"]]],
                    "body": card,
                }
        store.put_many(entries, fill_of="list")
        return answer

    return _read_through("list", name, lookup, fill, page)


def _page_of(entry: dict, cards: dict[int, dict]) -> ListPage:
    return ListPage(
        cards=[cards[i] for i in entry["ids"] if i in cards],
        next=entry["next"],
        previous=entry["previous"],
    )
