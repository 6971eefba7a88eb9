"""Lab `pool` (16): exhaust a small connection pool, see the timeout, then
the pool serving again as soon as a connection comes back.

The pool is the shop's own kind (shop/db_backend/base.py: ShopPool, what
every pooled alias uses), built small for the lab from the parameters of
`default`, and closed at the end: the app's pools are not touched.
"""

from __future__ import annotations

import threading
import time

from django.db import connections
from psycopg_pool import PoolTimeout

from shop.db_backend.base import ShopPool
from shop.lab import LabFailed, Narrator, lab

SIZE = 2
# Seconds a request waits for a connection in the lab's pool (the app's
# `default` waits DATABASE_POOL_TIMEOUT, 10 s, for the same reason).
TIMEOUT = 0.5


@lab(
    "pool",
    chapter="16",
    summary="Exhaust a small pool: the timeout error, then the pool serves again",
)
def pool(n: Narrator) -> None:
    n.step(f"A pool of {SIZE} connections, as shop_app, opened and filled")
    params = connections["default"].get_connection_params()
    lab_pool = ShopPool(
        kwargs={**params, "autocommit": True},
        min_size=SIZE,
        max_size=SIZE,
        timeout=TIMEOUT,
        name="lab-pool",
        open=True,
    )
    with lab_pool:
        lab_pool.wait(timeout=10)
        _show_stats(n, lab_pool)
        held = [lab_pool.getconn() for _ in range(SIZE)]
        try:
            _exhausted(n, lab_pool, held)
            _recovery(n, lab_pool, held)
        finally:
            for conn in held:
                if conn is not None:
                    lab_pool.putconn(conn)
        n.step("The pool's own account of it")
        stats = _show_stats(n, lab_pool)
        n.expect(
            stats.get("requests_errors", 0) == 1,
            "one request failed (the one that timed out), no other",
        )


def _exhausted(n: Narrator, lab_pool: ShopPool, held: list) -> None:
    n.step("Two requests hold both connections and use them")
    for number, conn in enumerate(held, start=1):
        n.sql(
            "SELECT pg_backend_pid() AS server_pid",
            cursor=conn.cursor(),
            label=f"request {number}",
        )
    n.expect(
        lab_pool.get_stats().get("pool_available") == 0,
        "no connection is left in the pool",
    )

    n.step(f"A third request asks for one, and waits {TIMEOUT} s")
    n.show_sql(f"pool.getconn()  -- timeout={TIMEOUT}")
    started = time.monotonic()
    try:
        lab_pool.getconn()
    except PoolTimeout as error:
        waited = time.monotonic() - started
        n.say(f"    -> {type(error).__name__}: {error}  (after {waited:.2f} s)")
    else:
        raise LabFailed("the third request got a connection from a full pool")
    n.expect(
        TIMEOUT <= waited < TIMEOUT + 0.5,
        f"it gave up after the pool's timeout ({TIMEOUT} s), not sooner, not much "
        "later: the API answers that as a 503 `database_unavailable`",
    )


def _recovery(n: Narrator, lab_pool: ShopPool, held: list) -> None:
    n.step("Recovery: a request waits while another gives its connection back")
    got: dict[str, float] = {}

    def request() -> None:
        conn = lab_pool.getconn(timeout=10)
        got["at"] = time.monotonic()
        got["connection"] = conn
        lab_pool.putconn(conn)

    waiter = threading.Thread(target=request, name="lab-pool-waiter")
    waiter.start()
    deadline = time.monotonic() + 5
    while lab_pool.get_stats().get("requests_waiting", 0) < 1:
        if time.monotonic() > deadline:
            raise LabFailed("the third request never started waiting")
        time.sleep(0.01)
    n.say("    -> request 3 is waiting: requests_waiting = 1")
    n.show_sql("pool.putconn(connection of request 1)")
    returned = held[0]
    returned_at = time.monotonic()
    lab_pool.putconn(returned)
    held[0] = None
    waiter.join(10)
    if "at" not in got:
        raise LabFailed("the waiting request never got the returned connection")
    n.say(f"    -> request 3 got a connection {got['at'] - returned_at:.3f} s later")
    n.expect(
        got["at"] - returned_at < 0.2,
        "the waiting request is served as soon as a connection comes back",
    )
    n.expect(
        got["connection"] is returned,
        "with the very connection request 1 returned: no new login to the server",
    )


def _show_stats(n: Narrator, lab_pool: ShopPool) -> dict:
    stats = lab_pool.get_stats()
    shown = {
        name: stats.get(name, 0)
        for name in (
            "pool_size",
            "pool_available",
            "requests_num",
            "requests_waiting",
            "requests_errors",
        )
    }
    n.table(list(shown), [tuple(shown.values())])
    return stats
