"""The PL/pgSQL in orders/sql/: triggers, a function, a procedure, recovery."""

from datetime import timedelta

import pytest
from django.db import connection
from django.utils import timezone

from catalog.models import Product, StockLevel
from orders.models import IdempotencyKey, Order, StockMovement
from orders.services import checkout_recover
from orders.services.checkout import ShippingAddress, _reserve
from orders.services.idempotency import idempotency_key_claim
from tests.catalog.factories import ProductFactory, StockLevelFactory
from tests.dbs import ALL_DATABASES, as_staff
from tests.orders.factories import (
    CartItemFactory,
    CouponFactory,
    OrderFactory,
    OrderLineFactory,
)

ADDRESS = ShippingAddress(
    line1="1 Test St", city="Testville", postal_code="1", country="US"
)


@pytest.mark.django_db
def test_every_stock_change_lands_in_the_ledger_even_from_raw_sql():
    level = StockLevelFactory(quantity_on_hand=5)
    with connection.cursor() as cursor:
        cursor.execute(
            "UPDATE catalog_stock_level SET quantity_on_hand = quantity_on_hand + 3 "
            "WHERE id = %s",
            [level.pk],
        )
    movements = StockMovement.objects.filter(stock_level=level).order_by("id")
    assert [(m.reason, m.on_hand_delta) for m in movements] == [
        ("initial", 5),
        ("unspecified", 3),
    ]


@pytest.mark.django_db
def test_an_update_that_changes_no_count_writes_no_ledger_row():
    level = StockLevelFactory(quantity_on_hand=5)
    StockLevel.objects.filter(pk=level.pk).update(quantity_on_hand=5)
    assert StockMovement.objects.filter(stock_level=level).count() == 1


@pytest.mark.django_db
def test_updated_at_is_kept_by_the_database_for_queryset_updates():
    product = ProductFactory()
    old = timezone.now() - timedelta(days=3)
    Product.objects.filter(pk=product.pk).update(updated_at=old)
    Product.objects.filter(pk=product.pk).update(name="Renamed")
    product.refresh_from_db()
    assert product.updated_at > old + timedelta(days=2)


@pytest.mark.django_db
def test_the_lines_total_function_agrees_with_every_stored_subtotal():
    order = OrderFactory(subtotal="59.97", total="59.97")
    OrderLineFactory(order=order, unit_price="19.99", quantity=3)
    with as_staff(), connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FROM orders_order "
            "WHERE subtotal <> orders_order_lines_total(id)"
        )
        assert cursor.fetchone() == (0,)
        cursor.execute("SELECT orders_order_lines_total(%s)", [order.pk])
        assert str(cursor.fetchone()[0]) == "59.97"


def interrupted_checkout(units=2, coupon=None):
    """Phase 1 only, as if the process died before paying."""
    item = CartItemFactory(quantity=units)
    level = StockLevelFactory(variant=item.variant, quantity_on_hand=5)
    customer_id = item.cart.customer_id
    key = idempotency_key_claim(customer_id=customer_id, key="k1", fingerprint="f")
    placed = _reserve(customer_id, key.key_id, ADDRESS, coupon)
    return level, placed.order


@pytest.mark.django_db(transaction=True, databases=ALL_DATABASES)
def test_recovery_releases_stale_checkouts_and_frees_their_keys():
    coupon = CouponFactory(code="HALF", percent_off=50, usage_limit=1)
    level, order = interrupted_checkout(coupon="HALF")
    level.refresh_from_db()
    assert level.reserved == 2
    with as_staff():
        Order.objects.filter(pk=order.pk).update(
            created_at=timezone.now() - timedelta(hours=1)
        )
        IdempotencyKey.objects.update(created_at=timezone.now() - timedelta(hours=1))

    report = checkout_recover(older_than=timedelta(minutes=15), batch_size=1)

    assert (report.released, report.failures) == (1, [])
    level.refresh_from_db()
    assert (level.quantity_on_hand, level.reserved) == (5, 0)
    with as_staff():
        assert Order.objects.get(pk=order.pk).status == "failed"
        assert not IdempotencyKey.objects.exists()
    coupon.refresh_from_db()
    assert coupon.times_used == 0
    assert StockMovement.objects.filter(reason="stale_release", order=order).exists()


@pytest.mark.django_db(transaction=True, databases=ALL_DATABASES)
def test_recovery_leaves_fresh_checkouts_alone():
    level, order = interrupted_checkout()
    assert checkout_recover(older_than=timedelta(minutes=15)).settled == 0
    level.refresh_from_db()
    assert level.reserved == 2
    with as_staff():
        assert Order.objects.get(pk=order.pk).status == "pending"
