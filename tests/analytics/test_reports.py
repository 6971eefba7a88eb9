"""The staff reports (analytics/reports.py), each against a small shop history
whose answer was worked out by hand, in the comments beside it."""

from datetime import UTC, date, datetime
from decimal import Decimal

import pytest
from django.db import connections

from analytics import reports
from analytics.reports import Window
from tests.accounts.factories import CustomerFactory
from tests.catalog.factories import (
    CategoryFactory,
    ProductFactory,
    StockLevelFactory,
    VariantFactory,
)
from tests.dbs import ALL_DATABASES, wait_for_replica
from tests.openapi import assert_matches_schema
from tests.orders.conftest import client_for
from tests.orders.factories import OrderFactory, OrderLineFactory

pytestmark = pytest.mark.django_db(transaction=True, databases=ALL_DATABASES)

D = Decimal


def order(customer, day: date, total="10.00", status="paid", lines=()):
    """A paid order placed at noon (UTC) on `day`; lines are (product, units)."""
    at = datetime(day.year, day.month, day.day, 12, tzinfo=UTC)
    placed = OrderFactory(
        customer=customer,
        status=status,
        subtotal=D(total),
        total=D(total),
        created_at=at,
        paid_at=at if status == "paid" else None,
    )
    for product, units in lines:
        stock = StockLevelFactory(variant=VariantFactory(product=product))
        OrderLineFactory(order=placed, stock=stock, quantity=units)
    return placed


def sales_history():
    c1, c2, c3 = CustomerFactory(), CustomerFactory(), CustomerFactory()
    order(c1, date(2026, 3, 2), "10.00")
    order(c2, date(2026, 3, 2), "20.00")
    order(c1, date(2026, 3, 4), "5.00")
    order(c3, date(2026, 3, 10), "7.00")
    order(c1, date(2026, 4, 1), "3.00")
    order(c2, date(2026, 3, 2), "100.00", status="failed")  # not a sale
    order(c3, date(2026, 2, 27), "50.00")  # before the window


def test_sales_by_day_week_month_and_total():
    sales_history()
    window = Window(date(2026, 3, 1), date(2026, 4, 2))

    rows = reports.sales_by_period(window)

    assert [
        (r["grain"], r["period_start"], r["orders"], r["revenue"]) for r in rows
    ] == [
        ("day", date(2026, 3, 2), 2, D("30.00")),
        ("day", date(2026, 3, 4), 1, D("5.00")),
        ("day", date(2026, 3, 10), 1, D("7.00")),
        ("day", date(2026, 4, 1), 1, D("3.00")),
        # Weeks start on Monday: 2 March, 9 March and 30 March 2026 are Mondays.
        ("week", date(2026, 3, 2), 3, D("35.00")),
        ("week", date(2026, 3, 9), 1, D("7.00")),
        ("week", date(2026, 3, 30), 1, D("3.00")),
        ("month", date(2026, 3, 1), 4, D("42.00")),
        ("month", date(2026, 4, 1), 1, D("3.00")),
        ("total", None, 5, D("45.00")),
    ]


def test_having_keeps_the_periods_with_enough_orders():
    sales_history()
    window = Window(date(2026, 3, 1), date(2026, 4, 2))

    rows = reports.sales_by_period(window, min_orders=2)

    assert [(r["grain"], r["period_start"], r["orders"]) for r in rows] == [
        ("day", date(2026, 3, 2), 2),
        ("week", date(2026, 3, 2), 3),
        ("month", date(2026, 3, 1), 4),
        ("total", None, 5),
    ]


def test_running_total_and_moving_average_count_days_without_sales():
    sales_history()
    window = Window(date(2026, 3, 1), date(2026, 3, 10))  # 1 to 9 March

    rows = reports.daily_running_totals(window)

    assert [
        (r["day"].day, r["revenue"], r["running_total"], r["moving_avg_7d"])
        for r in rows
    ] == [
        (1, D("0"), D("0"), D("0.00")),
        (2, D("30.00"), D("30.00"), D("15.00")),  # (0 + 30) / 2
        (3, D("0"), D("30.00"), D("10.00")),  # 30 / 3
        (4, D("5.00"), D("35.00"), D("8.75")),  # 35 / 4
        (5, D("0"), D("35.00"), D("7.00")),
        (6, D("0"), D("35.00"), D("5.83")),  # 35 / 6
        (7, D("0"), D("35.00"), D("5.00")),  # 35 / 7, a full frame from here
        (8, D("0"), D("35.00"), D("5.00")),  # 2 to 8 March
        (9, D("0"), D("35.00"), D("0.71")),  # 3 to 9 March: 5 / 7
    ]


def test_top_products_ranked_three_ways():
    a, b = CategoryFactory(slug="a"), CategoryFactory(slug="b")
    p1, p2, p3, p4 = (ProductFactory(category=a) for _ in range(4))
    q1 = ProductFactory(category=b)
    customer = CustomerFactory()
    order(customer, date(2026, 3, 2), lines=[(p1, 3), (p2, 5), (p3, 2), (q1, 3)])
    order(customer, date(2026, 3, 3), lines=[(p1, 2), (p4, 1)])
    # Units: p1 5, p2 5 (a tie), p3 2, p4 1; q1 3.

    rows = reports.top_products_per_category(
        Window(date(2026, 3, 1), date(2026, 4, 1)), top=3
    )

    assert [
        (
            r["category"],
            r["product_id"],
            r["units"],
            r["row_number"],
            r["rank"],
            r["dense_rank"],
        )
        for r in rows
    ] == [
        ("a", p1.pk, 5, 1, 1, 1),
        ("a", p2.pk, 5, 2, 1, 1),  # the tie: numbered 2, ranked 1 both ways
        ("a", p3.pk, 2, 3, 3, 2),  # RANK skips 2, DENSE_RANK does not
        ("b", q1.pk, 3, 1, 1, 1),
    ]  # fmt: skip  (p4 ranks 4: out)


def test_customers_who_never_ordered_both_ways():
    ordered, never, also_never = CustomerFactory(), CustomerFactory(), CustomerFactory()
    order(ordered, date(2026, 3, 2))
    order(also_never, date(2026, 3, 2), status="failed")  # an order all the same

    not_exists = reports.customers_never_ordered(limit=10)
    left_join = reports.customers_never_ordered(limit=10, form="left_join")

    assert [r["customer_id"] for r in not_exists] == [never.pk]
    assert left_join == not_exists


def test_categories_without_sales_and_the_rollup_of_the_tree():
    root = CategoryFactory(slug="r")
    child = CategoryFactory(slug="r-a", parent=root)
    grandchild = CategoryFactory(slug="r-a-1", parent=child)
    other = CategoryFactory(slug="s")
    idle = CategoryFactory(slug="t")
    ProductFactory(category=idle)
    customer = CustomerFactory()
    order(
        customer,
        date(2026, 3, 2),
        lines=[
            (ProductFactory(category=grandchild), 3),
            (ProductFactory(category=child), 2),
            (ProductFactory(category=other), 1),
        ],
    )
    window = Window(date(2026, 3, 1), date(2026, 4, 1))

    without = reports.categories_without_sales(window)
    rollup = reports.category_rollup(window)

    assert [r["slug"] for r in without] == ["r", "t"]  # r sold nothing itself
    assert [(r["slug"], r["own_units"], r["units"]) for r in rollup] == [
        ("r", 0, 5),  # its subtree: 2 + 3
        ("r-a", 2, 5),
        ("r-a-1", 3, 3),
        ("s", 1, 1),
        ("t", 0, 0),
    ]
    # Each line was 5.00 a unit (the factory's): revenue follows the units.
    assert rollup[0]["revenue"] == D("25.00")


def test_a_cycle_in_the_category_tree_is_walked_once():
    a, b = CategoryFactory(slug="a"), CategoryFactory(slug="b")
    customer = CustomerFactory()
    order(
        customer,
        date(2026, 3, 2),
        lines=[(ProductFactory(category=a), 2), (ProductFactory(category=b), 3)],
    )
    # a -> b -> a. A trigger refuses it; with the trigger off (a bulk load,
    # say), the report must still end, and count each category once.
    with connections["owner"].cursor() as cursor:
        cursor.execute(
            "ALTER TABLE catalog_category DISABLE TRIGGER catalog_category_no_cycle"
        )
        try:
            cursor.execute(
                "UPDATE catalog_category SET parent_id = %s WHERE id = %s",
                [b.pk, a.pk],
            )
            cursor.execute(
                "UPDATE catalog_category SET parent_id = %s WHERE id = %s",
                [a.pk, b.pk],
            )
        finally:
            cursor.execute(
                "ALTER TABLE catalog_category ENABLE TRIGGER catalog_category_no_cycle"
            )

    rows = reports.category_rollup(Window(date(2026, 3, 1), date(2026, 4, 1)))

    assert [(r["slug"], r["own_units"], r["units"]) for r in rows] == [
        ("a", 2, 5),  # itself and b, each once
        ("b", 3, 5),
    ]


def test_repeat_purchase_cohorts():
    c1, c2, c3 = CustomerFactory(), CustomerFactory(), CustomerFactory()
    order(c1, date(2026, 1, 15))
    order(c1, date(2026, 2, 3))
    order(c1, date(2026, 3, 20))
    order(c2, date(2026, 1, 20))
    order(c2, date(2026, 3, 1))
    order(c3, date(2026, 2, 10))
    window = Window(date(2026, 1, 1), date(2026, 3, 31))

    rows = reports.repeat_purchase_cohorts(window)

    assert [(r["cohort"], r["months_later"], r["customers"]) for r in rows] == [
        (date(2026, 1, 1), 0, 2),
        (date(2026, 1, 1), 1, 1),  # c1 in February
        (date(2026, 1, 1), 2, 2),  # both in March
        (date(2026, 2, 1), 0, 1),
    ]


def test_products_bought_together():
    p1, p2, p3 = ProductFactory(), ProductFactory(), ProductFactory()
    customer = CustomerFactory()
    day = date(2026, 3, 2)
    order(customer, day, lines=[(p1, 1), (p2, 1), (p3, 1)])
    order(customer, day, lines=[(p1, 1), (p2, 2)])
    order(customer, day, lines=[(p2, 1), (p3, 1)])
    order(customer, day, lines=[(p1, 1), (p1, 1)])  # one product, two variants

    rows = reports.bought_together(
        Window(date(2026, 3, 1), date(2026, 4, 1)), min_orders=2, limit=10
    )

    assert [(r["product_a"], r["product_b"], r["orders"]) for r in rows] == [
        (p1.pk, p2.pk, 2),
        (p2.pk, p3.pk, 2),
    ]  # (p1, p3) was bought together once: below min_orders


REPORT_PATHS = [
    "sales",
    "daily",
    "top-products",
    "customers-without-orders",
    "categories-without-sales",
    "category-rollup",
    "cohorts",
    "bought-together",
]


@pytest.mark.parametrize("name", REPORT_PATHS)
def test_each_report_answers_staff_and_refuses_customers(name, staff_client):
    sales_history()
    path = f"/api/v1/analytics/{name}/"

    response = staff_client.get(path, {"since": "2026-03-01", "until": "2026-04-02"})
    refused = client_for(CustomerFactory()).get(path)

    assert response.status_code == 200, response.json()
    assert_matches_schema(response, path, "GET")
    assert refused.status_code == 403


def test_a_backwards_or_too_long_window_is_a_400(staff_client):
    backwards = staff_client.get(
        "/api/v1/analytics/sales/", {"since": "2026-03-02", "until": "2026-03-01"}
    )
    too_long = staff_client.get(
        "/api/v1/analytics/sales/", {"since": "2020-01-01", "until": "2026-01-01"}
    )
    not_a_date = staff_client.get("/api/v1/analytics/sales/", {"since": "yesterday"})
    # Next to date.max and date.min, the month arithmetic would overflow.
    last_days = staff_client.get(
        "/api/v1/analytics/cohorts/", {"since": "9999-12-30", "until": "9999-12-31"}
    )
    first_days = staff_client.get("/api/v1/analytics/daily/", {"until": "0001-01-05"})

    for response in (backwards, too_long, not_a_date, last_days, first_days):
        assert response.status_code == 400
        assert set(response.json()) >= {"code", "detail"}


@pytest.mark.django_db(transaction=True, databases=[*ALL_DATABASES, "readonly"])
def test_reports_read_the_replica_as_shop_readonly(settings):
    settings.REPLICA_READS = True
    sales_history()
    wait_for_replica()

    with reports.staff_report_transaction() as alias:
        pass
    rows = reports.sales_by_period(Window(date(2026, 3, 1), date(2026, 4, 2)))

    assert alias == "readonly"
    assert rows[-1]["revenue"] == D("45.00")
