"""orders_checkout_place: checkout as one PL/pgSQL call (the benchmark's rival).

The function is not what the API runs; these tests hold it to the same
promises as the app's checkout, so that `make bench` compares equal work.
"""

from decimal import Decimal

import pytest
from django.db import DatabaseError, connection
from django.db.models import Sum

from catalog.models import Product
from orders.models import CartItem, IdempotencyKey, Order, Payment, StockMovement
from shop.db_retry import sqlstate
from tests.catalog.factories import StockLevelFactory, WarehouseFactory
from tests.catalog.test_in_stock import drift as in_stock_drift
from tests.concurrency import run_concurrently
from tests.dbs import ALL_DATABASES, as_staff
from tests.orders.factories import CartFactory, CartItemFactory

pytestmark = pytest.mark.django_db(transaction=True, databases=ALL_DATABASES)

PLACE = "SELECT orders_checkout_place(%s, %s, %s, %s, %s, %s)"
ADDRESS = ("1 Test Street", "Testville", "12345", "US")


def place(customer_id, key="key-1", address=ADDRESS):
    with connection.cursor() as cursor:
        cursor.execute(PLACE, [customer_id, key, *address])
        return cursor.fetchone()[0]


def refused(customer_id, **kwargs):
    """Call the function, expecting it to refuse; return the database error."""
    with pytest.raises(DatabaseError) as caught:
        place(customer_id, **kwargs)
    return caught.value


def stock(level):
    level.refresh_from_db()
    return level.quantity_on_hand, level.reserved


def test_the_function_places_a_paid_order_and_sells_the_stock():
    main = WarehouseFactory()
    other = WarehouseFactory(code="EAST", name="East", is_default=False)
    shirt = StockLevelFactory(quantity_on_hand=5, warehouse=main)
    mug_main = StockLevelFactory(quantity_on_hand=3, warehouse=main)
    mug_east = StockLevelFactory(
        quantity_on_hand=9, warehouse=other, variant=mug_main.variant
    )
    cart = CartFactory()
    CartItemFactory(cart=cart, variant=shirt.variant, quantity=2)
    CartItemFactory(cart=cart, variant=mug_main.variant, quantity=1)

    order_id = place(cart.customer_id)

    with as_staff():
        order = Order.objects.get(pk=order_id)
        assert (order.status, order.subtotal, order.total) == (
            "paid",
            Decimal("59.97"),
            Decimal("59.97"),
        )
        assert order.paid_at is not None
        assert (order.ship_line1, order.ship_city, order.ship_country) == (
            "1 Test Street",
            "Testville",
            "US",
        )
        lines = list(
            order.lines.order_by("variant_id").values_list(
                "sku", "product_name", "unit_price", "quantity", "warehouse_id"
            )
        )
        assert lines == [
            (
                shirt.variant.sku,
                shirt.variant.product.name,
                Decimal("19.99"),
                2,
                main.pk,
            ),
            # The default warehouse serves first, though East has more.
            (
                mug_main.variant.sku,
                mug_main.variant.product.name,
                Decimal("19.99"),
                1,
                main.pk,
            ),
        ]
        assert Payment.objects.get(order=order).status == "captured"
        assert Payment.objects.get(order=order).amount == order.total
        assert (stock(shirt), stock(mug_main), stock(mug_east)) == (
            (3, 0),
            (2, 0),
            (9, 0),
        )
        assert not CartItem.objects.filter(cart=cart).exists()
        # Reserve and sell as one step: one 'sale' movement per line.
        assert list(
            StockMovement.objects.filter(order_id=order_id)
            .order_by("stock_level_id")
            .values_list("stock_level_id", "reason", "on_hand_delta", "reserved_delta")
        ) == [(shirt.pk, "sale", -2, 0), (mug_main.pk, "sale", -1, 0)]
        key = IdempotencyKey.objects.get(customer_id=cart.customer_id)
        assert (key.status, key.order_id, key.response_status) == (
            "completed",
            order_id,
            201,
        )


def test_the_same_key_returns_the_same_order_and_other_arguments_are_refused():
    item = CartItemFactory(quantity=1)
    StockLevelFactory(variant=item.variant, quantity_on_hand=5)
    customer_id = item.cart.customer_id
    first = place(customer_id)
    CartItemFactory(cart=item.cart, variant=item.variant)

    assert place(customer_id) == first
    error = refused(customer_id, address=(*ADDRESS[:3], "FR"))

    assert sqlstate(error) == "SH422"
    with as_staff():
        assert Order.objects.count() == 1
        assert CartItem.objects.filter(cart=item.cart).count() == 1


def test_insufficient_stock_is_refused_naming_the_short_skus_and_leaves_nothing():
    warehouse = WarehouseFactory()
    short = StockLevelFactory(quantity_on_hand=5, reserved=1, warehouse=warehouse)
    fine = StockLevelFactory(quantity_on_hand=5, warehouse=warehouse)
    cart = CartFactory()
    CartItemFactory(cart=cart, variant=short.variant, quantity=5)
    CartItemFactory(cart=cart, variant=fine.variant, quantity=1)

    error = refused(cart.customer_id)

    assert sqlstate(error) == "SH409"
    assert f"Not enough stock for: {short.variant.sku}." in str(error)
    assert error.__cause__.diag.message_detail == short.variant.sku
    assert (stock(short), stock(fine)) == ((5, 1), (5, 0))
    with as_staff():
        assert not Order.objects.exists()
        assert not IdempotencyKey.objects.exists()
        assert CartItem.objects.filter(cart=cart).count() == 2
    assert not StockMovement.objects.exclude(reason="initial").exists()


def test_an_empty_cart_is_refused():
    cart = CartFactory()
    assert sqlstate(refused(cart.customer_id)) == "SH400"
    with as_staff():
        assert not IdempotencyKey.objects.exists()


@pytest.mark.concurrency
def test_the_function_never_sells_more_than_stock_under_a_race():
    units, buyers = 5, 12
    level = StockLevelFactory(quantity_on_hand=units)
    customers = [
        CartItemFactory(variant=level.variant).cart.customer_id for _ in range(buyers)
    ]

    results, errors = run_concurrently([lambda c=c: place(c) for c in customers])

    assert sum(r is not None for r in results) == units
    assert sorted(sqlstate(e) for e in errors if e is not None) == ["SH409"] * (
        buyers - units
    )
    assert stock(level) == (0, 0)
    with as_staff():
        assert Order.objects.filter(status="paid").count() == units
    ledger = StockMovement.objects.filter(stock_level=level).aggregate(
        on_hand=Sum("on_hand_delta"), reserved=Sum("reserved_delta")
    )
    assert (ledger["on_hand"], ledger["reserved"]) == (0, 0)


def test_the_function_selling_the_last_unit_takes_the_product_out_of_stock():
    row = StockLevelFactory(quantity_on_hand=1)
    cart = CartFactory()
    CartItemFactory(cart=cart, variant=row.variant, quantity=1)

    place(cart.customer_id)

    assert Product.objects.get(pk=row.variant.product_id).in_stock is False
    assert in_stock_drift() == []
