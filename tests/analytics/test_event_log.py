"""The staff event log and the funnel (analytics/event_log.py), on hand-made events.

The events are appended to the outbox the way the triggers and the view
flush append them (shop_outbox_append), with the times chosen here, and
shipped by the relay: the funnel's two answers (MongoDB's pipeline, SQL over
the outbox) then read the very same events. On the `store` fixture:
mongomock always, a real MongoDB when MONGO_URL answers.
"""

import json
import socket
from base64 import urlsafe_b64encode
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest
from django.db import connection

from analytics import event_log, event_store
from analytics.relay import relay_pending
from analytics.reports import Window
from tests.accounts.factories import CustomerFactory
from tests.dbs import ALL_DATABASES
from tests.openapi import assert_matches_schema
from tests.orders.conftest import client_for

pytestmark = pytest.mark.django_db(transaction=True, databases=ALL_DATABASES)

# Recent: raw views expire from MongoDB after EVENT_VIEW_TTL_SECONDS (a TTL
# index, which mongomock applies too), so an old day would have no views.
DAY = datetime.now(UTC).date() - timedelta(days=3)
WINDOW = Window(DAY, DAY + timedelta(days=1))
EVENTS = "/api/v1/analytics/events/"
FUNNEL = "/api/v1/analytics/funnel/"


def at(hour: int, minute: int = 0, day: date = DAY) -> datetime:
    """A time on `day` in the shop's zone, where the window's days are."""
    from django.conf import settings

    return datetime.combine(day, time(hour, minute), ZoneInfo(settings.TIME_ZONE))


def append(*events: dict) -> None:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT shop_outbox_append(%s::jsonb)",
            [json.dumps(list(events), default=str)],
        )


def view(customer, product: int, when: datetime) -> dict:
    return {
        "type": "product.viewed",
        "aggregate_type": "product",
        "aggregate_id": product,
        "customer_id": customer,
        "occurred_at": when.isoformat(),
        "payload": {"product_id": product},
    }


def carted(customer: int, product: int, when: datetime) -> dict:
    return {
        "type": "cart.item_added",
        "aggregate_type": "cart",
        "aggregate_id": 1000 + customer,
        "customer_id": customer,
        "occurred_at": when.isoformat(),
        "payload": {"cart_id": 1000 + customer, "product_id": product, "quantity": 1},
    }


def ordered(customer: int, order: int, products: list[int], when: datetime) -> dict:
    lines = [{"product_id": p, "variant_id": p * 10, "quantity": 1} for p in products]
    return {
        "type": "order.placed",
        "aggregate_type": "order",
        "aggregate_id": order,
        "customer_id": customer,
        "occurred_at": when.isoformat(),
        "payload": {"order_id": order, "status": "pending", "lines": lines},
    }


def funnel_history() -> None:
    """Six (customer, product) pairs viewed in the window, three carted, one ordered.

    Customers 1..6, products 1..4; the day is [00:00, 24:00) of DAY.
    """
    append(
        # 1 views 1, adds it, orders it with another product: all three steps.
        view(1, 1, at(10)),
        view(1, 1, at(10, 20)),  # a second view is the same pair
        carted(1, 1, at(10, 5)),
        ordered(1, 501, [1, 3], at(10, 10)),
        # 1 views 2 and does nothing more: viewed only.
        view(1, 2, at(10, 1)),
        # 2 added 1 before viewing it, and ordered it: no cart after the
        # view, so viewed only (the order does not count without the cart).
        carted(2, 1, at(10, 30)),
        view(2, 1, at(11)),
        ordered(2, 502, [1], at(11, 30)),
        # 3 views and adds 1; the order with 1 came before the add: carted.
        ordered(3, 503, [1], at(11, 59)),
        view(3, 1, at(12)),
        carted(3, 1, at(12, 1)),
        ordered(3, 504, [4], at(12, 30)),  # another product
        # 4 viewed 2 the day before: the pair is not in the window at all.
        view(4, 2, at(9, day=DAY - timedelta(days=1))),
        carted(4, 2, at(9)),
        # 5 views and adds 1 late; the order comes the next day: carted.
        view(5, 1, at(23)),
        carted(5, 1, at(23, 30)),
        ordered(5, 505, [1], at(0, 10, day=DAY + timedelta(days=1))),
        # 6 adds 3 to the cart of another product's view: viewed only.
        view(6, 4, at(8)),
        carted(6, 3, at(8, 5)),
        # An anonymous view counts nowhere.
        view(None, 1, at(13)),
    )


EXPECTED_FUNNEL = [
    {"step": "viewed", "pairs": 6, "of_viewed": 1.0},
    {"step": "carted", "pairs": 3, "of_viewed": 0.5},
    {"step": "ordered", "pairs": 1, "of_viewed": round(1 / 6, 4)},
]


def test_the_funnel_in_the_event_log_and_in_sql_agree_with_the_hand_count(store):
    funnel_history()
    # SQL first, while the outbox holds every event; the relay leaves them
    # there (shipped) until the purge, so the order does not matter.
    in_sql = event_log.funnel_sql(WINDOW)
    assert relay_pending().shipped == 20
    in_mongo = event_log.funnel_mongo(WINDOW)
    assert in_sql["steps"] == EXPECTED_FUNNEL
    assert in_mongo["steps"] == EXPECTED_FUNNEL
    assert (in_sql["source"], in_mongo["source"]) == ("postgresql", "mongodb")


def test_both_funnels_compare_times_at_mongodbs_millisecond(store):
    """BSON dates hold milliseconds: a cart add 0.5 ms before the view, in
    the same millisecond, is "after" it in the event log, and in SQL too."""
    micro = timedelta(microseconds=1)
    append(
        view(1, 1, at(10) + 900 * micro),
        carted(1, 1, at(10) + 400 * micro),  # same millisecond: counts
        view(2, 1, at(10) + 1900 * micro),
        carted(2, 1, at(10) + 400 * micro),  # a millisecond before: does not
    )
    in_sql = event_log.funnel_sql(WINDOW)
    relay_pending()
    in_mongo = event_log.funnel_mongo(WINDOW)
    expected = [(2, 1.0), (1, 0.5), (0, 0.0)]
    assert [(s["pairs"], s["of_viewed"]) for s in in_sql["steps"]] == expected
    assert [(s["pairs"], s["of_viewed"]) for s in in_mongo["steps"]] == expected


def test_an_empty_window_is_a_funnel_of_zeros(store):
    funnel_history()
    relay_pending()
    empty = Window(date(2025, 1, 1), date(2025, 1, 2))
    zeros = [
        {"step": step, "pairs": 0, "of_viewed": None} for step in event_log.FUNNEL_STEPS
    ]
    assert event_log.funnel_mongo(empty)["steps"] == zeros
    assert event_log.funnel_sql(empty)["steps"] == zeros


def test_the_funnel_api_answers_staff_only(store, staff_client):
    funnel_history()
    relay_pending()
    response = staff_client.get(
        FUNNEL, {"since": str(DAY), "until": str(DAY + timedelta(days=1))}
    )
    assert response.status_code == 200, response.content
    assert_matches_schema(response, FUNNEL, "get")
    assert response.json()["steps"] == EXPECTED_FUNNEL
    customer = client_for(CustomerFactory())
    assert customer.get(FUNNEL).status_code == 403


# --- The event list ------------------------------------------------------------


def list_history() -> None:
    append(
        ordered(7, 601, [1], at(9)),
        carted(7, 2, at(9, 30)),
        carted(8, 2, at(9, 30)),  # the same instant: _id breaks the tie
        carted(8, 3, at(9, 30)),
        ordered(8, 602, [2, 3], at(10)),
        view(8, 2, at(8)),  # a view: its own collection, not in this list
    )
    relay_pending()


def all_pages(client, **params) -> list[dict]:
    seen, url = [], EVENTS
    response = client.get(url, params)
    while True:
        assert response.status_code == 200, response.content
        assert_matches_schema(response, EVENTS, "get")
        body = response.json()
        seen.extend(body["results"])
        if body["next"] is None:
            return seen
        response = client.get(body["next"])


def test_pages_walk_every_event_once_newest_first(store, staff_client):
    list_history()
    events = all_pages(staff_client, limit=2)
    assert len(events) == 5 and len({e["id"] for e in events}) == 5
    keys = [(e["occurred_at"], e["id"]) for e in events]
    assert keys == sorted(keys, reverse=True)
    first = events[0]
    assert first["type"] == "order.placed" and first["aggregate"] == {
        "type": "order",
        "id": 602,
    }
    assert first["sequence"] == 1 and first["customer_id"] == 8
    assert first["payload"]["lines"][0]["product_id"] == 2


def test_filters_by_type_customer_and_window(store, staff_client):
    list_history()
    by_type = all_pages(staff_client, type="cart.item_added", limit=1)
    assert [e["type"] for e in by_type] == ["cart.item_added"] * 3
    by_customer = all_pages(staff_client, customer=7)
    assert [e["aggregate"]["id"] for e in by_customer] == [1007, 601]
    window = all_pages(
        staff_client,
        since=at(9, 30).isoformat(),
        until=at(10).isoformat(),
        customer=8,
    )
    assert len(window) == 2 and {e["type"] for e in window} == {"cart.item_added"}


def cursor_of(at: str) -> str:
    raw = json.dumps([at, "00000000-0000-0000-0000-000000000000"]).encode()
    return urlsafe_b64encode(raw).decode()


@pytest.mark.parametrize(
    "params, status, code",
    [
        ({"type": "product.viewed"}, 400, "invalid"),
        ({"type": "nonsense"}, 400, "invalid"),
        ({"customer": "0"}, 400, "invalid"),
        ({"customer": str(2**63)}, 400, "invalid"),
        ({"since": "2026-03-10T10:00Z", "until": "2026-03-10T09:00Z"}, 400, "invalid"),
        ({"since": "yesterday"}, 400, "invalid"),
        ({"limit": "201"}, 400, "invalid"),
        ({"cursor": "not-a-cursor"}, 404, "invalid_cursor"),
        ({"cursor": "WyJ4IiwgMV0"}, 404, "invalid_cursor"),  # ["x", 1]
        # A valid ISO time that no BSON date can hold once in UTC.
        ({"cursor": cursor_of("0001-01-01T00:00:00+05:00")}, 404, "invalid_cursor"),
        ({"cursor": cursor_of("9999-12-31T23:00:00-05:00")}, 404, "invalid_cursor"),
        ({"cursor": cursor_of("2026-03-10T10:00:00")}, 404, "invalid_cursor"),
    ],
)
def test_bad_input_is_a_clear_4xx(store, staff_client, params, status, code):
    response = staff_client.get(EVENTS, params)
    assert response.status_code == status, response.content
    assert response.json()["code"] == code
    assert_matches_schema(response, EVENTS, "get")  # a documented status


def test_customers_may_not_read_the_event_log(store):
    assert client_for(CustomerFactory()).get(EVENTS).status_code == 403


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.parametrize("url", ["", "closed"])
def test_with_no_event_store_the_api_says_503_with_the_reason(
    staff_client, settings, url
):
    settings.MONGO_URL = url and f"mongodb://127.0.0.1:{closed_port()}"
    settings.MONGO_TIMEOUT_MS = 300
    event_store.forget_clients()
    try:
        for path in (EVENTS, FUNNEL):
            response = staff_client.get(path)
            assert response.status_code == 503, response.content
            body = response.json()
            assert body["code"] == "event_store_unavailable"
            assert ("MONGO_URL is empty" in body["detail"]) == (url == "")
    finally:
        event_store.forget_clients()
