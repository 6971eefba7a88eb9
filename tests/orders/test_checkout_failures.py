"""Checkout when things go wrong: busy rows after the charge, double clicks,
products taken off sale, amounts too large, stock split over warehouses."""

import threading
import uuid
from datetime import timedelta
from decimal import Decimal

import pytest
from django.db import connection, transaction
from django.utils import timezone

from catalog.models import Product, StockLevel
from orders.models import IdempotencyKey, Order, Payment
from orders.services import checkout_recover
from tests.catalog.factories import StockLevelFactory, VariantFactory, WarehouseFactory
from tests.dbs import ALL_DATABASES, as_staff
from tests.orders.conftest import checkout, client_for
from tests.orders.factories import CartItemFactory

pytestmark = pytest.mark.django_db(transaction=True, databases=ALL_DATABASES)


def hold_row_during_payment(settings, level):
    """While the gateway answers, another session takes the stock row and keeps it."""
    locked, release = threading.Event(), threading.Event()

    def holder():
        with transaction.atomic():
            StockLevel.objects.select_for_update().get(pk=level.pk)
            locked.set()
            release.wait(60)
        connection.close()

    def hold_during_the_charge(call):
        if call.name == "charge":
            thread.start()
            locked.wait(30)

    thread = threading.Thread(target=holder)
    settings.PAYMENT_GATEWAY_HOOK = hold_during_the_charge
    return thread, release


@pytest.mark.slow  # phase 3 waits out its lock timeout four times (about 20 s)
def test_a_charge_captured_before_a_busy_phase_3_is_recorded_and_finished(settings):
    level = StockLevelFactory(quantity_on_hand=5)
    item = CartItemFactory(variant=level.variant, quantity=2)
    client = client_for(item.cart.customer)
    thread, release = hold_row_during_payment(settings, level)
    try:
        response = checkout(client, key="after-the-charge")
    finally:
        release.set()
        thread.join(30)
    settings.PAYMENT_GATEWAY_HOOK = None

    # Phase 3 gave up on the busy row: the client is told to retry...
    assert response.status_code == 503
    with as_staff():
        order = Order.objects.get()
        assert order.status == "pending"
        # ...but the captured charge is on file,
        assert list(Payment.objects.values_list("status", flat=True)) == ["captured"]
    # and the same key keeps answering "in use" rather than charging again.
    assert checkout(client, key="after-the-charge").status_code == 409

    with as_staff():
        Order.objects.update(created_at=timezone.now() - timedelta(minutes=5))
    assert checkout_recover().settled == 1

    with as_staff():
        order.refresh_from_db()
    assert order.status == "paid"
    level.refresh_from_db()
    assert (level.quantity_on_hand, level.reserved) == (3, 0)
    replay = checkout(client, key="after-the-charge")
    assert replay.status_code == 201
    assert replay.json()["id"] == order.pk
    with as_staff():
        assert Payment.objects.count() == 1


def test_a_second_checkout_of_the_same_cart_during_payment_is_refused(settings):
    level = StockLevelFactory(quantity_on_hand=10)
    item = CartItemFactory(variant=level.variant, quantity=2)
    client = client_for(item.cart.customer)
    second = {}

    def double_click(call):
        if "response" not in second:
            second["response"] = checkout(client, key=str(uuid.uuid4()))

    settings.PAYMENT_GATEWAY_HOOK = double_click
    first = checkout(client, key=str(uuid.uuid4()))

    assert first.status_code == 201
    assert second["response"].status_code == 409
    assert second["response"].json()["code"] == "checkout_in_progress"
    with as_staff():
        assert Order.objects.count() == 1
    level.refresh_from_db()
    assert level.quantity_on_hand == 8


def test_a_product_taken_off_sale_after_it_was_carted_is_not_sold():
    level = StockLevelFactory(quantity_on_hand=5)
    item = CartItemFactory(variant=level.variant)
    Product.objects.filter(pk=level.variant.product_id).update(is_active=False)

    response = checkout(client_for(item.cart.customer))

    assert response.status_code == 409
    assert response.json()["code"] == "unavailable"
    assert response.json()["skus"] == [level.variant.sku]
    with as_staff():
        assert not Order.objects.exists()


def test_amounts_beyond_numeric_12_2_are_a_400_not_a_500():
    level = StockLevelFactory(
        quantity_on_hand=5000, variant=VariantFactory(price=Decimal("20000000.00"))
    )
    client = client_for(CartItemFactory(variant=level.variant).cart.customer)

    response = client.post(
        "/api/v1/cart/items/",
        {"sku": level.variant.sku, "quantity": 999},
        format="json",
    )

    assert response.status_code == 400
    assert response.json()["code"] == "amount_too_large"
    assert client.get("/api/v1/cart/").status_code == 200


def test_the_cart_promises_only_what_one_warehouse_can_ship():
    main = StockLevelFactory(quantity_on_hand=3)
    east = WarehouseFactory(code="EAST", name="East", is_default=False)
    StockLevelFactory(variant=main.variant, warehouse=east, quantity_on_hand=3)
    client = client_for(CartItemFactory(variant=main.variant, quantity=1).cart.customer)
    url = "/api/v1/cart/items/"

    too_many = client.post(url, {"sku": main.variant.sku, "quantity": 4}, format="json")
    assert too_many.status_code == 409
    assert (
        client.post(
            url, {"sku": main.variant.sku, "quantity": 2}, format="json"
        ).status_code
        == 201
    )
    assert checkout(client).status_code == 201


@pytest.mark.parametrize("key", ["a\x00b", "with space", "é", "x" * 256])
def test_malformed_idempotency_keys_are_a_400(key):
    level = StockLevelFactory()
    client = client_for(CartItemFactory(variant=level.variant).cart.customer)
    response = checkout(client, key=key)
    assert response.status_code == 400
    assert response.json()["code"] in {"invalid_idempotency_key", "invalid"}
    with as_staff():
        assert not IdempotencyKey.objects.exists()
