"""Checkout through the API, one request at a time (races: test_concurrency.py)."""

from contextlib import contextmanager

import pytest
from django.db import connections

from catalog.models import Product, StockLevel
from orders.models import IdempotencyKey, Order, Payment, StockMovement
from tests.catalog.test_in_stock import drift as in_stock_drift
from tests.dbs import ALL_DATABASES, as_staff
from tests.openapi import assert_matches_schema
from tests.orders.conftest import ADDRESS, checkout, client_for
from tests.orders.factories import CouponFactory

# Transactional: checkout commits between its phases and refuses to call the
# payment gateway inside a transaction, which a TestCase-style test would be.
pytestmark = pytest.mark.django_db(transaction=True, databases=ALL_DATABASES)


def stock(sku):
    level = StockLevel.objects.get(variant__sku=sku)
    return level.quantity_on_hand, level.reserved


def add(client, sku, quantity=1):
    response = client.post(
        "/api/v1/cart/items/", {"sku": sku, "quantity": quantity}, format="json"
    )
    assert response.status_code == 201, response.json()
    return response.json()


def test_checkout_places_a_paid_order_and_sells_the_stock(shopper, stocked_sku):
    add(shopper, stocked_sku, 2)

    response = checkout(shopper)

    assert response.status_code == 201, response.json()
    body = response.json()
    assert body["status"] == "paid"
    assert body["total"] == "39.98"
    assert body["lines"] == [{"sku": stocked_sku, "quantity": 2, "unit_price": "19.99"}]
    assert stock(stocked_sku) == (3, 0)
    assert shopper.get("/api/v1/cart/").json()["items"] == []
    with as_staff():
        order = Order.objects.get(pk=body["id"])
        assert (order.ship_city, order.ship_country) == ("Testville", "US")
        assert Payment.objects.get(order=order).status == "captured"


def test_the_ledger_records_the_reservation_and_the_sale(shopper, stocked_sku):
    add(shopper, stocked_sku, 2)
    order_id = checkout(shopper).json()["id"]

    movements = list(
        StockMovement.objects.filter(order_id=order_id)
        .order_by("id")
        .values_list("reason", "on_hand_delta", "reserved_delta")
    )

    assert movements == [("reserve", 0, 2), ("sale", -2, -2)]
    level = StockLevel.objects.get(variant__sku=stocked_sku)
    ledger = StockMovement.objects.filter(stock_level=level)
    assert sum(m.on_hand_delta for m in ledger) == level.quantity_on_hand
    assert sum(m.reserved_delta for m in ledger) == level.reserved


def test_a_missing_idempotency_key_is_a_400(shopper, stocked_sku):
    add(shopper, stocked_sku)
    response = shopper.post(
        "/api/v1/checkout/",
        {"shipping_address": ADDRESS, "payment_token": "tok_ok"},
        format="json",
    )
    assert response.status_code == 400
    assert response.json()["code"] == "idempotency_key_missing"


def test_an_empty_cart_is_a_400(shopper):
    response = checkout(shopper)
    assert response.status_code == 400
    assert response.json()["code"] == "cart_empty"


def test_insufficient_stock_is_a_409_naming_the_short_skus(shopper, stocked_sku):
    add(shopper, stocked_sku, 5)
    StockLevel.objects.filter(variant__sku=stocked_sku).update(reserved=1)

    response = checkout(shopper)

    assert response.status_code == 409
    assert response.json()["code"] == "insufficient_stock"
    assert response.json()["skus"] == [stocked_sku]
    assert stock(stocked_sku) == (5, 1)
    with as_staff():
        assert not Order.objects.exists()


def test_a_declined_payment_is_a_402_and_releases_the_stock(shopper, stocked_sku):
    add(shopper, stocked_sku, 2)

    response = checkout(shopper, payment="tok_declined")

    assert response.status_code == 402
    assert response.json()["code"] == "payment_declined"
    assert stock(stocked_sku) == (5, 0)
    with as_staff():
        assert Order.objects.get().status == "failed"
    assert shopper.get("/api/v1/cart/").json()["items"][0]["quantity"] == 2


def test_the_same_key_and_body_replays_the_stored_response(shopper, stocked_sku):
    add(shopper, stocked_sku)
    first = checkout(shopper, key="key-1")
    add(shopper, stocked_sku)

    again = checkout(shopper, key="key-1")

    assert again.status_code == 201
    assert again.json() == first.json()
    with as_staff():
        assert Order.objects.count() == 1


def test_the_same_key_with_another_body_is_a_422(shopper, stocked_sku):
    add(shopper, stocked_sku)
    checkout(shopper, key="key-1")

    response = checkout(shopper, key="key-1", payment="tok_declined")

    assert response.status_code == 422
    assert response.json()["code"] == "idempotency_key_reused"


def test_a_key_still_in_progress_is_a_409(shopper, customer, stocked_sku):
    add(shopper, stocked_sku)
    from orders.services import request_fingerprint

    body = {"shipping_address": ADDRESS, "payment_token": "tok_ok"}
    with as_staff():
        IdempotencyKey.objects.create(
            customer=customer,
            key="key-1",
            request_fingerprint=request_fingerprint(body),
        )

    response = checkout(shopper, key="key-1")

    assert response.status_code == 409
    assert response.json()["code"] == "idempotency_key_in_use"
    assert response["Retry-After"] == "1"


def test_keys_belong_to_one_customer(shopper, stocked_sku, db):
    from tests.accounts.factories import CustomerFactory

    other = client_for(CustomerFactory())
    add(shopper, stocked_sku)
    add(other, stocked_sku)

    assert checkout(shopper, key="shared").status_code == 201
    assert checkout(other, key="shared").status_code == 201


def test_a_coupon_discounts_the_order(shopper, stocked_sku):
    CouponFactory(code="SAVE10", percent_off=10)
    add(shopper, stocked_sku, 2)

    body = checkout(shopper, coupon="SAVE10").json()

    assert (body["subtotal"], body["discount"], body["total"]) == (
        "39.98",
        "4.00",
        "35.98",
    )


def test_a_used_up_coupon_is_reported_and_the_order_still_goes_through(
    shopper, stocked_sku
):
    CouponFactory(code="ONCE", usage_limit=1, times_used=1)
    add(shopper, stocked_sku)

    response = checkout(shopper, coupon="ONCE")

    assert response.status_code == 201
    assert response.json()["discount"] == "0.00"
    assert "coupon_rejected" in response.json()


def test_cancel_returns_the_stock_in_one_transaction(shopper, stocked_sku):
    add(shopper, stocked_sku, 2)
    order_id = checkout(shopper).json()["id"]

    response = shopper.post(f"/api/v1/orders/{order_id}/cancel/")

    assert response.status_code == 200
    assert response.json()["status"] == "cancelled"
    assert stock(stocked_sku) == (5, 0)
    again = shopper.post(f"/api/v1/orders/{order_id}/cancel/")
    assert again.status_code == 409
    assert again.json()["code"] == "not_cancellable"


def test_orders_are_listed_and_shown_to_their_customer_only(shopper, stocked_sku):
    from tests.accounts.factories import CustomerFactory

    add(shopper, stocked_sku)
    order_id = checkout(shopper).json()["id"]
    other = client_for(CustomerFactory())

    listed = shopper.get("/api/v1/orders/").json()["results"]
    assert [o["id"] for o in listed] == [order_id]
    assert shopper.get(f"/api/v1/orders/{order_id}/").status_code == 200
    assert other.get(f"/api/v1/orders/{order_id}/").status_code == 404
    assert other.get("/api/v1/orders/").json()["results"] == []
    assert other.post(f"/api/v1/orders/{order_id}/cancel/").status_code == 404


def test_checkout_answers_match_the_schema(shopper, stocked_sku):
    # Found by `make security`: the schema promised order lines with a
    # product_name and money as plain strings; checkout's body
    # (orders/services/settle.py:order_body) has neither.
    CouponFactory(code="ONCE", usage_limit=1, times_used=1)
    empty = checkout(shopper)
    add(shopper, stocked_sku)
    placed = checkout(shopper, coupon="ONCE")
    add(shopper, stocked_sku)
    declined = checkout(shopper, payment="tok_declined")

    assert [r.status_code for r in (empty, placed, declined)] == [400, 201, 402]
    assert "coupon_rejected" in placed.json()
    for response in (empty, placed, declined):
        assert_matches_schema(response, "/api/v1/checkout/", "POST")


def test_the_order_list_and_detail_match_the_schema(shopper, stocked_sku):
    # Found by `make security`: the list is a page ({next, previous,
    # results}), and the schema said it was a bare array; and an order not
    # cancelled has "cancelled_at": null, which the schema did not allow.
    add(shopper, stocked_sku)
    order_id = checkout(shopper).json()["id"]
    page = shopper.get("/api/v1/orders/", {"page_size": 1})
    assert page.json()["results"][0]["id"] == order_id
    assert_matches_schema(page, "/api/v1/orders/", "GET")
    detail = shopper.get(f"/api/v1/orders/{order_id}/")
    assert_matches_schema(detail, "/api/v1/orders/{order_id}/", "GET")


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"shipping_address": {}, "payment_token": "tok_ok"},
        {"shipping_address": {**ADDRESS, "country": "usa"}, "payment_token": "tok_ok"},
        {"shipping_address": ADDRESS},
        {"shipping_address": "nowhere", "payment_token": "tok_ok"},
    ],
)
def test_bad_checkout_bodies_are_400(shopper, stocked_sku, body):
    add(shopper, stocked_sku)
    response = shopper.post(
        "/api/v1/checkout/", body, format="json", HTTP_IDEMPOTENCY_KEY="k"
    )
    assert response.status_code == 400
    assert response.json()["code"] == "invalid"
    with as_staff():
        assert not IdempotencyKey.objects.exists()


@contextmanager
def statements_on_every_alias():
    """Every statement sent on any database alias, BEGIN and COMMIT included.

    Like CaptureQueriesContext, but over every alias at once, and without
    connecting the ones the block does not use. Not counted: the fake
    payment gateway's own connection (orders/payments.py), which stands for
    another company's server, not for the shop's database.
    """
    captured = []
    started = {}
    for alias in connections:
        wrapper = connections[alias]
        started[alias] = (wrapper.force_debug_cursor, len(wrapper.queries_log))
        wrapper.force_debug_cursor = True
    try:
        yield captured
    finally:
        for alias, (forced, before) in started.items():
            wrapper = connections[alias]
            wrapper.force_debug_cursor = forced
            captured += [
                (alias, query["sql"]) for query in list(wrapper.queries_log)[before:]
            ]


def first_line(sql):
    """A statement's first line of SQL, its comments skipped."""
    return next((ln for ln in sql.splitlines() if not ln.startswith("--")), sql)


@pytest.mark.parametrize("lines", [1, 6])
def test_checkout_runs_the_same_number_of_statements_for_any_cart_size(shopper, lines):
    from tests.catalog.factories import StockLevelFactory, WarehouseFactory

    warehouse = WarehouseFactory()
    for _ in range(lines):
        add(shopper, StockLevelFactory(warehouse=warehouse).variant.sku)

    with statements_on_every_alias() as captured:
        assert checkout(shopper).status_code == 201

    # Counted once and written down: a change that adds a query per cart line
    # fails for the 6-line cart but not for the 1-line one.
    assert len(captured) == STATEMENTS_PER_CHECKOUT, "\n".join(
        f"{alias}: {first_line(sql)}" for alias, sql in captured
    )
    assert {alias for alias, _ in captured} == {"default"}


# 13 since each transaction's first statement sets its context, the key's
# claim and the charge's record each run alone in autocommit, and phase 1
# writes its lines, their reservations and the key's link in one statement
# (orders/services/checkout.py; docs/benchmarks.md has the profile). It
# was 32.
STATEMENTS_PER_CHECKOUT = 13


def test_units_added_while_paying_stay_in_the_cart(
    shopper, customer, stocked_sku, settings
):
    """Checkout removes what it sold, not the whole line."""
    from orders.models import CartItem

    add(shopper, stocked_sku, 2)

    def add_one_more_during_payment(call):
        with as_staff():
            CartItem.objects.filter(cart__customer=customer).update(quantity=3)

    settings.PAYMENT_GATEWAY_HOOK = add_one_more_during_payment
    response = checkout(shopper)

    assert response.status_code == 201
    assert response.json()["lines"][0]["quantity"] == 2
    assert [i["quantity"] for i in shopper.get("/api/v1/cart/").json()["items"]] == [1]


def test_selling_the_last_units_takes_the_product_out_of_stock(
    shopper, stocked_sku, api_client
):
    """checkout's own SQL crosses zero; the stock trigger flips the product."""
    product = Product.objects.get(variants__sku=stocked_sku)
    assert product.in_stock
    add(shopper, stocked_sku, 5)

    assert checkout(shopper).status_code == 201

    product.refresh_from_db()
    assert product.in_stock is False
    assert in_stock_drift() == []
    body = api_client.get("/api/v1/products/?in_stock=false").json()
    assert [p["slug"] for p in body["results"]] == [product.slug]
