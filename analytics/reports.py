"""Staff reports: SQL in analytics/sql/reports/, read on the replica (chapter 07, 08).

Each report is one parameterized statement, run by `report()` in
shop/replica.py's staff_report_transaction: on the `readonly` alias (the
standby, as shop_readonly, which may only SELECT) under a staff context, so
that row-level security shows every customer's rows, and on the primary
when the replica is down or lags. Dates are the shop's (TIME_ZONE): a
window [since, until) of whole days, turned into timestamps here, so that
the statements compare created_at with timestamps and can use its index.
"""

from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from django.conf import settings
from django.db import connections
from django.utils import timezone

from shop.replica import staff_report_transaction
from shop.sql_files import read_sql

SQL_DIR = "analytics/sql/reports/"


@dataclass(frozen=True)
class Window:
    """Whole days [since, until) in the shop's time zone."""

    since: date
    until: date

    def params(self) -> dict:
        zone = ZoneInfo(settings.TIME_ZONE)
        return {
            "since": datetime.combine(self.since, time.min, zone),
            "until": datetime.combine(self.until, time.min, zone),
            "first_day": self.since,
            "last_day": self.until - timedelta(days=1),
            # Cohorts by month: every month the window touches.
            "since_month": self.since.replace(day=1),
            "until_month": _next_month(self.until - timedelta(days=1)),
            "tz": settings.TIME_ZONE,
        }


def latest_window(days: int) -> Window:
    """The `days` days up to the newest paid order (today's, with none).

    For the labs, on a database whose history may have ended long ago (the
    seed's orders are dated 2023 and 2024).
    """
    with (
        staff_report_transaction() as alias,
        connections[alias].cursor() as cursor,
    ):
        cursor.execute(
            read_sql(f"{SQL_DIR}latest_sale_v01.sql"), {"tz": settings.TIME_ZONE}
        )
        (latest,) = cursor.fetchone()
    until = (latest or timezone.localdate()) + timedelta(days=1)
    return Window(since=until - timedelta(days=days), until=until)


def _next_month(day: date) -> date:
    return (day.replace(day=1) + timedelta(days=32)).replace(day=1)


def report(name: str, params: dict) -> list[dict]:
    """Run analytics/sql/reports/<name>.sql; its rows as dicts."""
    with (
        staff_report_transaction() as alias,
        connections[alias].cursor() as cursor,
    ):
        cursor.execute(read_sql(f"{SQL_DIR}{name}.sql"), params)
        columns = [column.name for column in cursor.description]
        return [dict(zip(columns, row, strict=True)) for row in cursor.fetchall()]


def sales_by_period(window: Window, *, min_orders: int = 1) -> list[dict]:
    return report("sales_by_period_v01", {**window.params(), "min_orders": min_orders})


def top_products_per_category(window: Window, *, top: int) -> list[dict]:
    return report("top_products_per_category_v01", {**window.params(), "top": top})


def daily_running_totals(window: Window) -> list[dict]:
    return report("daily_running_totals_v01", window.params())


def customers_never_ordered(*, limit: int, form: str = "not_exists") -> list[dict]:
    """The anti-join as NOT EXISTS (the API's) or as LEFT JOIN ... IS NULL."""
    name = {
        "not_exists": "customers_never_ordered_v01",
        "left_join": "customers_never_ordered_left_join_v01",
    }[form]
    return report(name, {"limit": limit})


def categories_without_sales(window: Window) -> list[dict]:
    return report("categories_without_sales_v01", window.params())


def category_rollup(window: Window) -> list[dict]:
    return report("category_rollup_v01", window.params())


def repeat_purchase_cohorts(window: Window) -> list[dict]:
    return report("repeat_purchase_cohorts_v01", window.params())


def bought_together(window: Window, *, min_orders: int, limit: int) -> list[dict]:
    return report(
        "bought_together_v01",
        {**window.params(), "min_orders": min_orders, "limit": limit},
    )


def daily_sales(window: Window) -> dict:
    """Sales per day: closed days from the materialized view, the rest live.

    One statement, so one snapshot: the freshness it tells is the freshness
    of the rows it gives. The view counts UTC days; so does this report,
    whatever TIME_ZONE says.
    """
    rows = report("daily_sales_fresh_v01", window.params())
    first = rows[0]
    return {
        "results": [
            {key: row[key] for key in ("day", "orders", "revenue", "source")}
            for row in rows
            if row["day"] is not None
        ],
        "view": {
            "refreshed_at": first["refreshed_at"],
            "covers_until": first["covers_until"],
        },
        "live": {"as_of": first["live_as_of"]},
    }


def daily_sales_refresh():
    """Refresh the daily-sales view (its SQL function); return when."""
    with connections["default"].cursor() as cursor:
        cursor.execute("SELECT analytics_daily_sales_refresh()")
        return cursor.fetchone()[0]
