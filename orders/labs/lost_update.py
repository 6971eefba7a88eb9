"""Lab `lost-update` (11): read-modify-write in Python loses a concurrent
restock; SET x = x + 1, which is what F() sends, waits for the row and does not.
"""

from __future__ import annotations

from django.db import connections
from django.db.models import F
from django.test.utils import CaptureQueriesContext

from catalog.models import StockLevel
from orders.labs._common import (
    LEDGER_SQL,
    READ_STOCK,
    _Blocked,
    _committed_rows,
    _sessions,
    _show_captured,
    _stock_rows,
    _wait_until_blocked,
)
from shop.lab import LabFailed, Narrator, lab, rolled_back


@lab(
    "lost-update",
    chapter="11",
    summary="Read-modify-write loses an update; SET x = x + 1 (F()) does not",
)
def lost_update(n: Narrator) -> None:
    with _committed_rows(n, "11-lost") as observer, _sessions(2) as (a, b):
        stock_id = _stock_rows(n, "11-lost", cursor=observer, label="setup")[0][0]

        n.step("Two restocks of one unit each: read, add 1 in Python, write")
        n.sql("BEGIN", cursor=a, label="session A")
        seen_a = n.sql(READ_STOCK, [stock_id], cursor=a, label="session A")[0][0]
        n.sql("BEGIN", cursor=b, label="session B")
        seen_b = n.sql(READ_STOCK, [stock_id], cursor=b, label="session B")[0][0]
        write = "UPDATE catalog_stock_level SET quantity_on_hand = %s WHERE id = %s"
        n.sql(write, [seen_a + 1, stock_id], cursor=a, label="session A")
        n.sql("COMMIT", cursor=a, label="session A")
        n.sql(write, [seen_b + 1, stock_id], cursor=b, label="session B")
        n.sql("COMMIT", cursor=b, label="session B")
        final = n.sql(READ_STOCK, [stock_id], cursor=observer, label="afterwards")
        n.expect(
            seen_a == seen_b == 10 and final == [(11,)],
            "two restocks of 1 unit turned 10 into 11: session B wrote the value "
            "it computed from a stale read, and A's unit is lost",
        )
        ledger = n.sql(LEDGER_SQL, [[stock_id]], cursor=observer, label="the ledger")
        n.expect(
            [r[1] for r in ledger] == [10, 1],
            "the ledger saw one +1 only: B's UPDATE changed 11 into 11, which is "
            "no change at all, so even the audit trail lost it",
        )

        n.step("The same two restocks as SET quantity_on_hand = quantity_on_hand + 1")
        increment = (
            "UPDATE catalog_stock_level SET quantity_on_hand = quantity_on_hand + 1 "
            "WHERE id = %s RETURNING quantity_on_hand"
        )
        n.sql("BEGIN", cursor=a, label="session A")
        n.sql(increment, [stock_id], cursor=a, label="session A")
        n.sql("BEGIN", cursor=b, label="session B")
        n.show_sql(increment, [stock_id], label="session B (waits: A holds the row)")
        waiting = _Blocked(b, increment, [stock_id])
        blockers = _wait_until_blocked(n, observer, waiting.pid)
        n.expect(
            blockers == [a.connection.info.backend_pid],
            "session B waits for session A's row lock instead of reading around it",
        )
        n.sql("COMMIT", cursor=a, label="session A")
        waiting.finish()
        if waiting.error:
            raise LabFailed(f"session B's UPDATE failed: {waiting.error}")
        n.say(f"    -> session B's UPDATE returns: {waiting.rows}")
        n.sql("COMMIT", cursor=b, label="session B")
        final = n.sql(READ_STOCK, [stock_id], cursor=observer, label="afterwards")
        n.expect(
            waiting.rows == [(13,)] and final == [(13,)],
            "11 + 1 + 1 = 13: after A committed, B re-read the row's new version "
            "and added its unit to that",
        )

        n.step("What the ORM sends for F(): the same single-statement increment")
        n.say(
            "    StockLevel.objects.filter(pk=stock_id)"
            '.update(quantity_on_hand=F("quantity_on_hand") + 1)'
        )
        with rolled_back("default"):
            with CaptureQueriesContext(connections["default"]) as captured:
                StockLevel.objects.filter(pk=stock_id).update(
                    quantity_on_hand=F("quantity_on_hand") + 1
                )
            (sql,) = _show_captured(n, captured)
        n.expect(
            '"quantity_on_hand" = ("catalog_stock_level"."quantity_on_hand" + 1)'
            in sql,
            "F() becomes quantity_on_hand = quantity_on_hand + 1 in the SET clause: "
            "no value travels through Python (rolled back here)",
        )
