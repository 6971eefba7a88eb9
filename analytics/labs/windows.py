"""Lab `windows` (08): GROUP BY and HAVING, GROUPING SETS, the three ranking
functions and window frames, on small VALUES lists and the reports' own SQL.

It writes nothing: the VALUES lists stand for data, and the reports read
the database as staff in a transaction that is rolled back.
"""

from __future__ import annotations

from decimal import Decimal

from analytics.reports import latest_window
from shop.lab import Narrator, lab, rolled_back
from shop.sql_files import read_sql

REPORTS = "analytics/sql/reports/"
UNITS = (
    "(VALUES ('lamp', 5), ('desk', 5), ('chair', 2), ('stool', 1))"
    " AS sold (product, units)"
)
DAYS = (
    "(VALUES (DATE '2026-03-01', 10), (DATE '2026-03-02', 0), "
    "(DATE '2026-03-02', 20), (DATE '2026-03-03', 5)) AS sales (day, revenue)"
)


@lab(
    "windows",
    chapter="08",
    summary="GROUPING SETS and HAVING; ROW_NUMBER, RANK, DENSE_RANK; frames",
)
def windows(n: Narrator) -> None:
    n.step("Three ranking functions over a tie")
    ranked = n.sql(
        "SELECT product, units, "
        "ROW_NUMBER() OVER (ORDER BY units DESC, product) AS row_number, "
        "RANK() OVER (ORDER BY units DESC) AS rank, "
        "DENSE_RANK() OVER (ORDER BY units DESC) AS dense_rank "
        f"FROM {UNITS} ORDER BY row_number"
    )
    n.expect(
        [row[2:] for row in ranked] == [(1, 1, 1), (2, 1, 1), (3, 3, 2), (4, 4, 3)],
        "the tie (desk and lamp, 5 each): ROW_NUMBER numbers them 1, 2; RANK "
        "gives both 1 and skips 2; DENSE_RANK gives both 1 and goes on at 2",
    )

    n.step("A frame: ROWS counts rows, RANGE counts equal keys together")
    frames = n.sql(
        "SELECT day, revenue, "
        # day, revenue: a tie-breaker, so that ROWS meets the two 2 March
        # rows in one known order (RANGE takes them together anyway).
        "sum(revenue) OVER (ORDER BY day, revenue ROWS BETWEEN UNBOUNDED PRECEDING "
        "AND CURRENT ROW) AS by_rows, "
        "sum(revenue) OVER (ORDER BY day) AS by_default_range "
        f"FROM {DAYS} ORDER BY day, revenue"
    )
    n.expect(
        [row[2] for row in frames] == [10, 10, 30, 35]
        and [row[3] for row in frames] == [10, 30, 30, 35],
        "on 2 March, ROWS adds one row at a time (10, then 30); the default "
        "frame (RANGE ... CURRENT ROW) takes both 2 March rows at once (30, 30)",
    )

    n.step("WHERE filters rows, HAVING filters groups")
    having = n.sql(
        "SELECT day, count(*) AS sales, sum(revenue) AS revenue "
        f"FROM {DAYS} WHERE revenue > 0 GROUP BY day HAVING sum(revenue) >= 10 "
        "ORDER BY day"
    )
    n.expect(
        [(str(row[0]), row[2]) for row in having]
        == [("2026-03-01", 10), ("2026-03-02", 20)],
        "the zero row went before grouping (WHERE); 3 March's group, 5 in "
        "all, after (HAVING)",
    )

    n.step("GROUPING SETS: day, week, month and total in one pass (the report)")
    with rolled_back("default"):
        n.act_as_staff()
        window = latest_window(90)
        n.say(
            f"    -- the 90 days up to the newest paid order: {window.since} to "
            f"{window.until} (exclusive)"
        )
        rows = n.sql(
            read_sql(REPORTS + "sales_by_period_v01.sql"),
            {**window.params(), "min_orders": 1},
            label="the sales report, the last 90 days",
            limit=6,
        )
        by_grain: dict[str, Decimal] = {}
        for grain, _, _, revenue in rows:
            by_grain[grain] = by_grain.get(grain, Decimal(0)) + revenue
        total = by_grain.get("total", Decimal(0))
        n.expect(
            all(by_grain.get(g, Decimal(0)) == total for g in ("day", "week", "month")),
            f"the days, the weeks and the months each add up to the total ({total})",
        )

        n.step("Running total and 7-day moving average (the report)")
        last = latest_window(14)
        daily = n.sql(
            read_sql(REPORTS + "daily_running_totals_v01.sql"),
            last.params(),
            label="the last 14 days, days without sales included",
            limit=14,
        )
        running = Decimal(0)
        sums_ok = True
        for _, _, revenue, running_total, _ in daily:
            running += revenue
            sums_ok = sums_ok and running == running_total
        n.expect(
            len(daily) == 14 and sums_ok,
            "one row per day, none missing, and each running total is the sum so far",
        )
