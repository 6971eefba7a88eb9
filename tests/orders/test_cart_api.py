"""The cart API per the contract."""

import pytest

from orders.models import CartItem
from tests.accounts.factories import CustomerFactory
from tests.catalog.factories import ProductFactory, StockLevelFactory, VariantFactory
from tests.dbs import as_staff
from tests.orders.conftest import client_for

pytestmark = pytest.mark.django_db


def add(client, sku, quantity=1):
    return client.post(
        "/api/v1/cart/items/", {"sku": sku, "quantity": quantity}, format="json"
    )


def test_adding_twice_increments_one_line(shopper, stocked_sku):
    first = add(shopper, stocked_sku, 2)
    second = add(shopper, stocked_sku, 1)

    assert first.status_code == second.status_code == 201
    assert second.json()["id"] == first.json()["id"]
    cart = shopper.get("/api/v1/cart/").json()
    assert cart == {
        "items": [
            {
                "id": first.json()["id"],
                "sku": stocked_sku,
                "quantity": 3,
                "unit_price": "19.99",
                "line_total": "59.97",
            }
        ],
        "subtotal": "59.97",
    }


def test_more_than_available_is_a_409_and_leaves_the_cart_as_it_was(
    shopper, stocked_sku
):
    add(shopper, stocked_sku, 4)
    response = add(shopper, stocked_sku, 2)
    assert response.status_code == 409
    assert response.json()["code"] == "insufficient_stock"
    with as_staff():
        assert CartItem.objects.get().quantity == 4


def test_inactive_or_unknown_skus_cannot_be_added(shopper):
    hidden = VariantFactory(product=ProductFactory(is_active=False))
    StockLevelFactory(variant=hidden)
    for sku in (hidden.sku, "NOPE-1"):
        response = add(shopper, sku)
        assert response.status_code == 400
        assert response.json()["code"] == "unknown_sku"


def test_change_and_remove_a_line(shopper, stocked_sku):
    item_id = add(shopper, stocked_sku).json()["id"]

    changed = shopper.patch(
        f"/api/v1/cart/items/{item_id}/", {"quantity": 5}, format="json"
    )
    assert changed.status_code == 200
    assert changed.json()["quantity"] == 5
    too_many = shopper.patch(
        f"/api/v1/cart/items/{item_id}/", {"quantity": 6}, format="json"
    )
    assert too_many.status_code == 409

    assert shopper.delete(f"/api/v1/cart/items/{item_id}/").status_code == 204
    assert shopper.get("/api/v1/cart/").json() == {"items": [], "subtotal": "0.00"}


def test_another_customers_line_is_a_404(shopper, stocked_sku):
    item_id = add(shopper, stocked_sku).json()["id"]
    other = client_for(CustomerFactory())
    url = f"/api/v1/cart/items/{item_id}/"
    assert other.patch(url, {"quantity": 1}, format="json").status_code == 404
    assert other.delete(url).status_code == 404
    with as_staff():
        assert CartItem.objects.filter(pk=item_id).exists()


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"quantity": 1},
        {"sku": "X", "quantity": 0},
        {"sku": "X", "quantity": -1},
        {"sku": "X", "quantity": 1001},
        {"sku": "X", "quantity": "many"},
    ],
)
def test_bad_cart_input_is_a_400(shopper, body):
    response = shopper.post("/api/v1/cart/items/", body, format="json")
    assert response.status_code == 400
    assert response.json()["code"] == "invalid"


def test_a_line_cannot_exceed_the_per_line_maximum_by_increments(shopper):
    sku = StockLevelFactory(quantity_on_hand=5000).variant.sku
    assert add(shopper, sku, 1000).status_code == 201
    response = add(shopper, sku, 1)
    assert response.status_code == 400
    assert response.json()["code"] == "quantity_too_large"


def test_anonymous_users_and_staff_without_a_customer_profile_have_no_cart(
    api_client, staff_client
):
    assert api_client.get("/api/v1/cart/").status_code == 401
    assert staff_client.get("/api/v1/cart/").status_code == 403
