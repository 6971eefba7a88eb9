"""Lab `deadlock` (12): two checkouts that lock the same rows in opposite
orders deadlock (40P01); orders/locks.py's one fixed order makes one only wait.
"""

from __future__ import annotations

import time

import psycopg
from django.db import connections, transaction
from django.test.utils import CaptureQueriesContext

from orders import locks
from orders.labs._common import (
    _Blocked,
    _committed_rows,
    _error_line,
    _layout,
    _sessions,
    _show_captured,
    _stock_rows,
    _wait_until_blocked,
)
from shop.lab import LabFailed, Narrator, lab

TAKE_ONE = (
    "UPDATE catalog_stock_level SET quantity_on_hand = quantity_on_hand - 1 "
    "WHERE id = %s"
)


@lab(
    "deadlock",
    chapter="12",
    summary="Opposite lock orders deadlock (40P01); one fixed order only waits",
)
def deadlock(n: Narrator) -> None:
    with _committed_rows(n, "12-dead") as observer, _sessions(2) as (a, b):
        stock = _stock_rows(
            n, "12-dead", variants=2, cursor=observer, label="setup: two SKUs"
        )
        first, second = stock[0][0], stock[1][0]
        timeout = n.sql(
            "SELECT setting::int AS deadlock_timeout_ms FROM pg_settings "
            "WHERE name = 'deadlock_timeout'",
            cursor=observer,
        )[0][0]
        wait = f"{max(5000, 3 * timeout)}ms"
        for cursor, name in ((a, "session A"), (b, "session B")):
            n.sql(
                "SELECT set_config('lock_timeout', %s, false)",
                [wait],
                cursor=cursor,
                label=f"{name}: longer than deadlock_timeout, so the detector decides",
            )

        n.step("Two checkouts lock the same two rows in opposite orders")
        n.sql("BEGIN", cursor=a, label="session A")
        n.sql(TAKE_ONE, [first], cursor=a, label="session A locks the first row")
        n.sql("BEGIN", cursor=b, label="session B")
        n.sql(TAKE_ONE, [second], cursor=b, label="session B locks the second row")
        n.show_sql(TAKE_ONE, [second], label="session A wants the second row: waits")
        a_waits = _Blocked(a, TAKE_ONE, [second], rollback_on_error=True)
        _wait_until_blocked(n, observer, a_waits.pid)
        n.show_sql(TAKE_ONE, [first], label="session B wants the first row: a cycle")
        b_error = None
        begun = time.monotonic()
        try:
            b.execute(TAKE_ONE, [first])
        except psycopg.errors.DeadlockDetected as exc:
            b_error = exc
            n.say(_error_line(exc))
            n.say(f"       {exc.diag.message_detail}".replace("\n", "\n       "))
            n.sql("ROLLBACK", cursor=b, label="session B")
        a_waits.finish()
        waited = time.monotonic() - begun
        if a_waits.error is not None:
            exc = a_waits.error
            n.say(f"    -- session A, in its thread:\n{_error_line(exc)}")
            n.say(f"       {exc.diag.message_detail}".replace("\n", "\n       "))
            n.say("    ROLLBACK  -- session A, at once")
        victims = [e for e in (a_waits.error, b_error) if e is not None]
        n.expect(
            len(victims) == 1 and victims[0].sqlstate == "40P01",
            f"after about deadlock_timeout ({timeout} ms; here {waited:.1f} s) "
            "PostgreSQL found the cycle and aborted exactly one of the two "
            "(40P01 deadlock_detected)",
        )
        survivor = b if b_error is None else a
        name = "session B" if b_error is None else "session A"
        n.say(f"    -- the victim rolled back; {name}'s UPDATE went through")
        n.sql("COMMIT", cursor=survivor, label=name)
        rows = n.sql(
            "SELECT id, quantity_on_hand FROM catalog_stock_level "
            "WHERE id = ANY(%s) ORDER BY id",
            [[first, second]],
            cursor=observer,
            label="afterwards",
        )
        n.expect(
            [r[1] for r in rows] == [9, 9],
            "only the survivor's work is there; the victim's checkout must be "
            "retried (shop/db_retry.py retries 40P01)",
        )

        _fixed_order(n, b, observer, stock)


def _fixed_order(n, b, observer, stock):
    n.step("The same two rows, locked by orders/locks.py:stock_levels_lock")
    variants = [stock[1][1], stock[0][1]]
    ids = [row[0] for row in stock]
    n.say(
        f"    -- session A is the shop's code; it asks in the opposite order, "
        f"variant_ids={variants}"
    )
    with transaction.atomic(using="default"):
        n.say("    BEGIN  -- session A")
        with CaptureQueriesContext(connections["default"]) as captured:
            locked = locks.stock_levels_lock(variant_ids=variants)
        (lock_sql,) = _show_captured(n, captured)
        n.say(f"    -> locked stock rows {[level.pk for level in locked]}")
        n.expect(
            [level.pk for level in locked] == ids and "FOR UPDATE OF" in lock_sql,
            "the rows come back, and are locked, in variant order, whatever "
            "order the caller passed",
        )
        n.sql("BEGIN", cursor=b, label="session B")
        n.show_sql(
            _layout(lock_sql), label="session B, the same query: waits at the first row"
        )
        b_waits = _Blocked(b, lock_sql)
        blockers = _wait_until_blocked(n, observer, b_waits.pid)
        a_pid = connections["default"].connection.info.backend_pid
        n.expect(
            blockers == [a_pid],
            "B waits for A at the first row, holding nothing A could need",
        )
        n.sql(
            "UPDATE catalog_stock_level SET quantity_on_hand = quantity_on_hand - 1 "
            "WHERE id = ANY(%s)",
            [ids],
            label="session A",
        )
    n.say("    COMMIT  -- session A")
    b_waits.finish()
    if b_waits.error is not None:
        raise LabFailed(f"session B failed: {b_waits.error}")
    n.say(f"    -> session B got both rows after {b_waits.seconds:.2f} s")
    n.sql(
        "UPDATE catalog_stock_level SET quantity_on_hand = quantity_on_hand - 1 "
        "WHERE id = ANY(%s)",
        [ids],
        cursor=b,
        label="session B",
    )
    n.sql("COMMIT", cursor=b, label="session B")
    rows = n.sql(
        "SELECT id, quantity_on_hand FROM catalog_stock_level "
        "WHERE id = ANY(%s) ORDER BY id",
        [ids],
        cursor=observer,
        label="afterwards",
    )
    n.expect(
        [r[1] for r in rows] == [7, 7],
        "both transactions committed: one waited, nobody was aborted",
    )
