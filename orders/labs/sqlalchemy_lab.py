"""Lab `sqlalchemy` (16): the shop's product list and its stock lock through
SQLAlchemy 2.0 (orders/labs/sqlalchemy_shop.py), on an engine with a pool of
its own: what it sends, what its pool does when it runs dry, when a
connection comes back carrying a setting, and when its server session died.
"""

from __future__ import annotations

import time

from sqlalchemy import column, event, func, select, table
from sqlalchemy.exc import InvalidatePoolError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeoutError
from sqlalchemy.orm import Session

from catalog import selectors
from catalog.models import StockLevel as DjangoStockLevel
from orders.labs import sqlalchemy_shop as shop_sa
from orders.labs._common import _committed_rows, _error_line, _stock_rows
from shop.lab import LabFailed, Narrator, lab
from shop.labs._sqlalchemy import echo

TAG = "16-sa"
PAGE = 5
STOCK_REASON = "lab 16 sqlalchemy"
# Small on purpose: the lab runs this pool dry and wants the refusal at once.
MAIN_POOL = {"pool_size": 2, "max_overflow": 1, "pool_timeout": 0.5}
# The ledger the stock trigger writes (orders/sql/triggers/stock_ledger_v01.sql),
# as a lightweight table: the columns this lab reads, no mapped class.
LEDGER = table(
    "orders_stock_movement",
    column("id"),
    column("stock_level_id"),
    column("reserved_delta"),
    column("reason"),
)
# This database's only: other checkouts may run the lab on the same server.
ACTIVE_SESSIONS_SQL = (
    "SELECT count(*) FROM pg_stat_activity "
    "WHERE application_name = %s AND datname = current_database()"
)


@lab(
    "sqlalchemy",
    chapter="16",
    summary="The product list and a stock lock in SQLAlchemy 2.0, with its own pool",
)
def sqlalchemy_lab(n: Narrator) -> None:
    engines = []

    def engine(**pool):
        made = shop_sa.engine_for("default", **pool)
        _narrate_pool(n, made)
        engines.append(made)
        return made

    with _committed_rows(n, TAG) as observer, echo(n):
        try:
            rows = _stock_rows(
                n,
                TAG,
                variants=2,
                on_hand=5,
                cursor=observer,
                label="setup, committed: the engine's connections must see it",
            )
            main = engine(**MAIN_POOL)
            _product_list(n, main, product_id=rows[0].product_id)
            _lock_and_reserve(n, main, rows)
            _context_on_return(n, engine(pool_size=1, max_overflow=0))
            _pre_ping(n, observer, engine, pre_ping=True)
            _pre_ping(n, observer, engine, pre_ping=False)
        finally:
            for made in engines:
                made.dispose()
        n.step("Every engine disposed: its pooled connections are closed")
        remaining = _wait_for_sessions(observer, 0)
        n.expect(
            remaining == 0,
            f"no session named {shop_sa.APPLICATION_NAME!r} is left on the server",
        )


def _product_list(n: Narrator, engine, *, product_id: int) -> None:
    n.step("An engine with a pool of its own")
    pool = engine.pool
    settings = ", ".join(f"{key}={value}" for key, value in MAIN_POOL.items())
    n.say(
        f"    create_engine(url, {settings}, pool_pre_ping=True)\n"
        f"    -> {type(pool).__name__}: {_status(pool)}"
    )

    n.step("The shop's product list in SQLAlchemy 2.0 (first page, newest first)")
    n.say(
        "    select(Product, category_slug.label(...), func.coalesce(available, 0)"
        ".label(...))\n"
        "    .where(Product.is_active, Product.min_price.is_not(None))\n"
        f"    .order_by(Product.created_at.desc(), Product.id.desc()).limit({PAGE})"
    )
    with Session(engine) as session:
        via_sqlalchemy = shop_sa.product_list(session, limit=PAGE)
    n.table(["id", "category_slug", "min_price", "available"], via_sqlalchemy)
    n.say("\n    selectors.product_list()[:5], on Django's own connection:")
    via_django = [
        (p.id, p.category_slug, p.min_price, p.available)
        for p in selectors.product_list().using("default")[:PAGE]
    ]
    n.expect(
        via_sqlalchemy == via_django,
        "SQLAlchemy and Django return the same page: ids, slugs, prices, units",
    )
    n.expect(
        via_sqlalchemy[0][0] == product_id and via_sqlalchemy[0][3] == 10,
        "the lab's product is the newest, with 2 variants x 5 units available",
    )


def _lock_and_reserve(n: Narrator, engine, rows) -> None:
    variant_ids = [row.variant_id for row in rows]
    pool = engine.pool
    n.step("A locking transaction: stock rows in the shop's lock order")
    n.say(
        "    The settings staff_transaction() sets, transaction-local, then the\n"
        "    lock of orders/locks.py:stock_levels_lock (variant, then warehouse)."
    )
    with Session(engine) as a, a.begin():
        shop_sa.set_context(
            a, {**shop_sa.STAFF_CONTEXT, "app.stock_reason": STOCK_REASON}
        )
        locked = shop_sa.stock_levels_lock(a, variant_ids=variant_ids)
        n.table(["id", "variant_id", "warehouse_id", "available", "default"], locked)
        n.expect(
            [row[:3] for row in locked]
            == sorted((row.stock_id, row.variant_id, row.warehouse_id) for row in rows),
            "both stock rows are locked, in (variant, warehouse) order",
        )

        n.step("A second connection from the same pool finds the rows locked")
        with engine.connect() as b:
            n.say(f"    pool: {_status(pool)}")
            nowait = shop_sa.stock_levels_lock_statement(variant_ids).with_for_update(
                of=shop_sa.StockLevel, nowait=True
            )
            try:
                b.execute(nowait)
            except OperationalError as exc:
                n.say(_error_line(exc.orig))
                sqlstate = exc.orig.sqlstate
            else:
                sqlstate = None
            n.expect(
                sqlstate == "55P03",
                "FOR UPDATE NOWAIT fails at once with 55P03: the first session "
                "holds the locks",
            )
            b.rollback()

            n.step("The pool runs dry: size 2, one overflow, then a 0.5 s wait")
            with engine.connect() as c:
                n.say(f"    a third checkout, overflow. pool: {_status(pool)}")
                began = time.monotonic()
                try:
                    engine.connect()
                except PoolTimeoutError as exc:
                    waited = time.monotonic() - began
                    n.say(f"    a fourth checkout -> {type(exc).__name__}: {exc}")
                else:
                    raise LabFailed("a fourth checkout got a connection")
                n.expect(
                    0.5 <= waited < 2.0,
                    f"the fourth checkout waited pool_timeout ({waited:.2f} s) "
                    "and was refused, instead of opening a fifth connection",
                )
                c.rollback()
        n.say(f"    b and c returned. pool: {_status(pool)}")
        n.expect(
            pool.checkedin() == 2 and pool.overflow() == 1,
            "both came back to the pool's idle queue (it holds pool_size = 2); "
            "three connections exist while the locking session holds one",
        )

        n.step("A conditional UPDATE reserves only what is there")
        first = locked[0][0]
        reserved = shop_sa.stock_reserve(a, stock_id=first, quantity=3)
        n.expect(reserved, "3 of 5 units reserved: the UPDATE matched one row")
        refused = not shop_sa.stock_reserve(a, stock_id=first, quantity=8)
        n.expect(
            refused,
            "8 more refused: 2 are left, the WHERE clause matched no row, and "
            "nothing was read, added and written back",
        )
        ledger = a.execute(
            select(LEDGER.c.stock_level_id, LEDGER.c.reserved_delta, LEDGER.c.reason)
            .where(LEDGER.c.stock_level_id == first)
            .order_by(LEDGER.c.id)
        ).all()
        n.table(["stock_level_id", "reserved_delta", "reason"], ledger)
        n.expect(
            ledger[-1][1:] == (3, STOCK_REASON),
            "the ledger's trigger read the reason from the transaction's context",
        )
    n.say(f"    a's connection returned to a full idle queue. pool: {_status(pool)}")
    n.expect(
        pool.checkedin() == 2 and pool.overflow() == 0,
        "back to pool_size: a connection returned while 2 wait idle is closed",
    )

    n.step("Django sees what SQLAlchemy committed")
    reserved_now = list(
        DjangoStockLevel.objects.using("default")
        .filter(variant_id__in=variant_ids)
        .order_by("variant_id", "warehouse_id")
        .values_list("reserved", flat=True)
    )
    page = selectors.product_list().using("default")[:1]
    n.say(
        f"    reserved per stock row: {reserved_now}; product_list available: "
        f"{page[0].available}"
    )
    n.expect(
        reserved_now == [3, 0] and page[0].available == 7,
        "3 units reserved on the first row; the product list shows 7 available",
    )


def _context_on_return(n: Narrator, one) -> None:
    n.step("What a pooled connection carries back: a pool of one connection")
    is_staff = func.current_setting("app.is_staff", True)
    with one.connect() as conn:
        pid = conn.scalar(select(func.pg_backend_pid()))
        conn.execute(select(func.set_config("app.is_staff", "on", True)))
        inside = conn.scalar(select(is_staff))
        conn.commit()
    with one.connect() as conn:
        again = conn.scalar(select(func.pg_backend_pid()))
        after = conn.scalar(select(is_staff))
    n.say(f"    transaction-local: {inside!r} inside, {after!r} at the next checkout")
    n.expect(
        again == pid and inside == "on" and not after,
        "set_config(..., true) ended with its transaction: the same server "
        "session came back from the pool acting for nobody",
    )
    with one.connect() as conn:
        conn.execute(select(func.set_config("app.is_staff", "on", False)))
        conn.commit()
    with one.connect() as conn:
        leaked = conn.scalar(select(is_staff))
        n.say(f"    session-level: {leaked!r} at the next checkout")
        n.expect(
            leaked == "on",
            "set_config(..., false) survived the pool's reset (a ROLLBACK): the "
            "next borrower would act as staff. The shop never sets one",
        )
        # Out of the pool for good, with what it carries.
        conn.invalidate()


def _pre_ping(n: Narrator, observer, engine, *, pre_ping: bool) -> None:
    made = engine(pool_size=1, max_overflow=0, pool_pre_ping=pre_ping)
    n.step(f"A pooled connection whose server session died: pool_pre_ping={pre_ping}")
    with made.connect() as conn:
        pid = conn.scalar(select(func.pg_backend_pid()))
    if pre_ping:
        live = _checkout_ms(made)
        n.say(f"    a checkout of the live connection, ping included: {live:.1f} ms")
    n.sql(
        "SELECT pg_terminate_backend(%s, 5000)",
        [pid],
        cursor=observer,
        label="another session ends the pooled one, as an admin or a restart would",
    )
    if pre_ping:
        dead = _checkout_ms(made)
        n.say(f"    a checkout of the dead one, ping and new connection: {dead:.1f} ms")
        with made.connect() as conn:
            fresh = conn.scalar(select(func.pg_backend_pid()))
        n.expect(
            fresh != pid,
            "the checkout's ping found the session dead and opened a new one: "
            "the caller saw no error",
        )
        return
    try:
        with made.connect() as conn:
            conn.scalar(select(func.pg_backend_pid()))
    except OperationalError as exc:
        n.say(f"    -> {type(exc).__name__}: {str(exc.orig).splitlines()[0]}")
        invalidated = exc.connection_invalidated
    else:
        raise LabFailed("a statement on a dead connection succeeded")
    n.expect(
        invalidated,
        "without the ping, the first statement fails; SQLAlchemy sees a "
        "disconnect and discards the pool's connections",
    )
    with made.connect() as conn:
        fresh = conn.scalar(select(func.pg_backend_pid()))
    n.expect(fresh != pid, "the next checkout connects afresh")


def _checkout_ms(engine) -> float:
    """How long one checkout takes, in milliseconds (the connection is returned)."""
    began = time.perf_counter()
    engine.connect().close()
    return (time.perf_counter() - began) * 1000


def _status(pool) -> str:
    return (
        f"{pool.checkedout()} checked out, {pool.checkedin()} idle, "
        f"overflow {max(pool.overflow(), 0)}"
    )


def _narrate_pool(n: Narrator, engine) -> None:
    """Say when the pool opens or discards a connection, with its server pid."""

    @event.listens_for(engine, "connect")
    def connected(dbapi_connection, record):
        pid = dbapi_connection.info.backend_pid
        record.info["pid"] = pid
        n.say(f"    pool: opened a connection (server pid {pid})")

    @event.listens_for(engine, "invalidate")
    def invalidated(dbapi_connection, record, exception):
        if exception is None:
            why = "invalidated by the lab"
        elif isinstance(exception, InvalidatePoolError):
            # What a failed pre-ping raises: the server may have restarted,
            # so every connection opened before now is discarded too.
            why = "its pre-ping failed"
        else:
            why = str(exception).splitlines()[0]
        n.say(
            f"    pool: discarded the connection of pid {record.info.get('pid')}: {why}"
        )


def _wait_for_sessions(observer, expected: int, timeout: float = 5.0) -> int:
    """Poll until `expected` sessions of the engine remain (closing is async)."""
    deadline = time.monotonic() + timeout
    while True:
        observer.execute(ACTIVE_SESSIONS_SQL, [shop_sa.APPLICATION_NAME])
        (count,) = observer.fetchone()
        if count == expected or time.monotonic() > deadline:
            return count
        time.sleep(0.02)
