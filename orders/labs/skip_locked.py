"""Lab `skip-locked` (12): workers claim disjoint batches of stale checkouts
with SKIP LOCKED; NOWAIT fails at once where a plain FOR UPDATE waits.
"""

from __future__ import annotations

import time

import psycopg

from orders.labs._common import (
    _committed_rows,
    _customers,
    _error_line,
    _orders,
    _sessions,
)
from shop.lab import LabFailed, Narrator, lab

STALE_BATCH = """
SELECT id FROM orders_order
WHERE status = 'pending' AND created_at < now() - interval '15 minutes'
  AND customer_id = %s  -- only the lab's orders
ORDER BY id
LIMIT 3
FOR UPDATE{}
"""


@lab(
    "skip-locked",
    chapter="12",
    summary="Workers take disjoint batches with SKIP LOCKED; NOWAIT fails at once",
)
def skip_locked(n: Narrator) -> None:
    with (
        _committed_rows(n, "12-skip") as observer,
        _sessions(3) as (a, b, c),
    ):
        (customer,) = _customers(n, "12-skip", 1, cursor=observer, label="setup")
        orders = _orders(
            n,
            customer,
            6,
            age="1 hour",
            cursor=observer,
            label="setup: six checkouts abandoned an hour ago",
        )
        skip = STALE_BATCH.format(" SKIP LOCKED")

        n.step("Two workers claim batches of stale checkouts")
        batches = []
        for cursor, name in ((a, "worker A"), (b, "worker B")):
            n.sql("BEGIN", cursor=cursor, label=name)
            rows = n.sql(skip, [customer], cursor=cursor, label=name)
            batches.append([r[0] for r in rows])
        n.expect(
            batches == [orders[:3], orders[3:]],
            "A took the first three, B skipped them and took the next three: "
            "disjoint batches, and neither waited",
        )
        n.sql("BEGIN", cursor=c, label="worker C")
        rows = n.sql(skip, [customer], cursor=c, label="worker C")
        n.expect(rows == [], "a third worker finds nothing left and does not wait")
        n.sql("ROLLBACK", cursor=c, label="worker C")

        n.step("Without SKIP LOCKED: a plain FOR UPDATE waits, NOWAIT does not")
        n.sql("SET lock_timeout = '300ms'", cursor=c, label="worker C")
        n.sql("BEGIN", cursor=c, label="worker C")
        plain = _timed_error(n, c, STALE_BATCH.format(""), customer, "worker C")
        n.sql("ROLLBACK", cursor=c, label="worker C")
        n.sql("SET lock_timeout = '5s'", cursor=c, label="worker C")
        n.sql("BEGIN", cursor=c, label="worker C")
        nowait = _timed_error(n, c, STALE_BATCH.format(" NOWAIT"), customer, "worker C")
        n.sql("ROLLBACK", cursor=c, label="worker C")
        n.expect(
            plain[0] == "55P03"
            and "lock timeout" in plain[1]
            and plain[2] >= 0.3
            and nowait[0] == "55P03"
            and "could not obtain lock" in nowait[1]
            and nowait[2] < 1.0,
            f"FOR UPDATE waited {plain[2] * 1000:.0f} ms until lock_timeout "
            f"gave up; NOWAIT failed in {nowait[2] * 1000:.0f} ms although "
            "lock_timeout was 5 s (both 55P03 lock_not_available)",
        )

        n.step("A worker that crashes gives its batch back")
        n.sql(
            "UPDATE orders_order SET status = 'failed' WHERE id = ANY(%s)",
            [batches[0]],
            cursor=a,
            label="worker A finishes its batch",
        )
        n.sql("COMMIT", cursor=a, label="worker A")
        n.sql("ROLLBACK", cursor=b, label="worker B dies before finishing")
        n.sql("BEGIN", cursor=c, label="worker C")
        rows = n.sql(skip, [customer], cursor=c, label="worker C")
        n.sql("ROLLBACK", cursor=c, label="worker C")
        n.expect(
            [r[0] for r in rows] == batches[1],
            "B's rows are back in the queue for the next worker; A's are done",
        )


def _timed_error(n, cursor, sql, customer, label):
    n.show_sql(sql, [customer], label=label)
    begun = time.monotonic()
    try:
        cursor.execute(sql, [customer])
    except psycopg.errors.LockNotAvailable as exc:
        elapsed = time.monotonic() - begun
        n.say(f"{_error_line(exc)}  (after {elapsed * 1000:.0f} ms)")
        return exc.sqlstate, str(exc), elapsed
    raise LabFailed("the locked rows were handed out although A and B hold them")
