"""The daily-sales view: closed days from a materialized view, today live,
and the row-level security question a refresh raises."""

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from django.db import connections
from django.utils import timezone

from analytics import reports
from analytics.reports import Window
from tests.accounts.factories import CustomerFactory
from tests.catalog.factories import StockLevelFactory
from tests.dbs import ALL_DATABASES
from tests.openapi import assert_matches_schema
from tests.orders.conftest import checkout, client_for, gateway  # noqa: F401
from tests.orders.factories import OrderFactory

pytestmark = pytest.mark.django_db(transaction=True, databases=ALL_DATABASES)


def paid(at: datetime, total="10.00", customer=None):
    return OrderFactory(
        customer=customer or CustomerFactory(),
        status="paid",
        subtotal=Decimal(total),
        total=Decimal(total),
        created_at=at,
        paid_at=at,
    )


def window_to_today():
    today = datetime.now(UTC).date()
    return Window(today - timedelta(days=3), today + timedelta(days=1))


def test_closed_days_come_from_the_view_and_today_from_the_live_orders():
    reports.daily_sales_refresh()
    now = timezone.now()
    today = now.astimezone(UTC).date()
    yesterday_noon = datetime.combine(
        today - timedelta(days=1), datetime.min.time(), UTC
    )
    paid(yesterday_noon + timedelta(hours=12), "7.00")
    paid(now, "5.00")

    stale = reports.daily_sales(window_to_today())

    # Yesterday is a closed day, and the view was refreshed before its order
    # existed: not there yet. Today is live: there at once.
    assert [(r["day"], r["orders"], r["source"]) for r in stale["results"]] == [
        (today, 1, "live")
    ]
    assert stale["view"]["covers_until"] == today

    refreshed_at = reports.daily_sales_refresh()
    fresh = reports.daily_sales(window_to_today())

    assert [(r["day"], r["revenue"], r["source"]) for r in fresh["results"]] == [
        (today - timedelta(days=1), Decimal("7.00"), "view"),
        (today, Decimal("5.00"), "live"),
    ]
    assert fresh["view"]["refreshed_at"] == refreshed_at
    assert fresh["live"]["as_of"] >= refreshed_at


def test_a_refresh_without_a_job_context_would_see_no_order():
    two_days_ago = timezone.now() - timedelta(days=2)
    paid(two_days_ago)
    paid(two_days_ago)
    # The owner refreshing by hand, in no context: FORCE ROW LEVEL SECURITY
    # holds the owner to the order policies, and nobody sees no order.
    with connections["owner"].cursor() as cursor:
        cursor.execute("REFRESH MATERIALIZED VIEW analytics_daily_sales")
        cursor.execute("SELECT count(*) FROM analytics_daily_sales")
        assert cursor.fetchone() == (0,)

    # The function acts as a job, whose policy shows every customer's order.
    reports.daily_sales_refresh()

    with connections["owner"].cursor() as cursor:
        cursor.execute("SELECT sum(orders) FROM analytics_daily_sales")
        assert cursor.fetchone() == (2,)


def test_an_order_placed_through_the_api_is_in_today_at_once(
    gateway,  # noqa: F811
    staff_client,
):
    customer = CustomerFactory()
    level = StockLevelFactory(quantity_on_hand=5)
    shopper = client_for(customer)
    shopper.post(
        "/api/v1/cart/items/", {"sku": level.variant.sku, "quantity": 1}, format="json"
    )
    placed = checkout(shopper)
    assert placed.status_code == 201

    response = staff_client.get("/api/v1/analytics/daily-sales/")

    assert response.status_code == 200
    assert_matches_schema(response, "/api/v1/analytics/daily-sales/", "GET")
    today = response.json()["results"][-1]
    assert (today["day"], today["orders"], today["revenue"], today["source"]) == (
        datetime.now(UTC).date().isoformat(),
        1,
        placed.json()["total"],
        "live",
    )
