"""The transactional outbox: each path that changes an order, a payment, stock
or a cart writes its events in the same transaction (shop/models.py,
orders/sql/triggers/outbox_v01.sql), and only a job reads them.

Every test commits (transaction=True): the order triggers are deferred to
COMMIT, and "written with the change" means nothing short of one.
"""

import threading
import time
from datetime import timedelta

import psycopg
import pytest
from django.db import connection, connections, transaction
from django.utils import timezone

from orders.models import IdempotencyKey, Order
from orders.services import checkout_recover
from shop.db_context import customer_transaction, job_transaction, staff_transaction
from shop.models import OutboxEvent
from shop.outbox import outbox_backlog
from tests.accounts.factories import CustomerFactory
from tests.catalog.factories import StockLevelFactory
from tests.dbs import ALL_DATABASES, as_staff, outbox_clear
from tests.orders.conftest import checkout, client_for
from tests.orders.factories import (
    CartFactory,
    CartItemFactory,
    CouponFactory,
    OrderFactory,
)
from tests.orders.test_checkout_function import place
from tests.orders.test_plpgsql import interrupted_checkout

pytestmark = pytest.mark.django_db(transaction=True, databases=ALL_DATABASES)


@pytest.fixture(autouse=True)
def empty_outbox(transactional_db):
    """The tests read "every event": start from none."""
    outbox_clear()


# Every key a payload may hold: ids, amounts, counts, statuses. No address,
# e-mail, token or encrypted field may ever appear among them.
ALLOWED_KEYS = {
    "order_id", "status", "total", "subtotal", "discount", "coupon_id", "lines",
    "payment_id", "amount", "stock_level_id",
    "variant_id", "warehouse_id", "on_hand_delta", "reserved_delta", "on_hand",
    "reserved", "reason", "cart_id", "product_id", "quantity", "session",
}  # fmt: skip
LINE_KEYS = {"variant_id", "product_id", "sku", "quantity", "unit_price"}


def events(**filters):
    """The outbox's rows, read as a job (the only reader allowed)."""
    with job_transaction("test"):
        return list(
            OutboxEvent.objects.filter(**filters)
            .order_by("id")
            .values(
                "type", "aggregate_type", "aggregate_id", "sequence",
                "customer_id", "payload",
            )
        )  # fmt: skip


def kinds(rows):
    return [row["type"] for row in rows]


def assert_sequences_gapless(rows):
    by_aggregate = {}
    for row in rows:
        key = (row["aggregate_type"], row["aggregate_id"])
        by_aggregate.setdefault(key, []).append(row["sequence"])
    for key, sequences in by_aggregate.items():
        assert sequences == list(range(1, len(sequences) + 1)), key


def assert_no_private_fields(rows):
    for row in rows:
        assert set(row["payload"]) <= ALLOWED_KEYS, row
        for line in row["payload"].get("lines", []):
            assert set(line) == LINE_KEYS


def test_the_api_checkout_writes_placed_paid_stock_and_cart_events(gateway):
    customer = CustomerFactory()
    level = StockLevelFactory(quantity_on_hand=5)
    shopper = client_for(customer)
    added = shopper.post(
        "/api/v1/cart/items/", {"sku": level.variant.sku, "quantity": 2}, format="json"
    )
    assert added.status_code == 201

    response = checkout(shopper)

    assert response.status_code == 201, response.json()
    order_id = response.json()["id"]
    rows = events()
    order_events = [r for r in rows if r["aggregate_type"] == "order"]
    assert kinds(order_events) == ["order.placed", "order.paid"]
    placed = order_events[0]
    assert placed["aggregate_id"] == order_id
    assert placed["customer_id"] == customer.pk
    assert placed["payload"]["total"] == "39.98"
    assert placed["payload"]["lines"] == [
        {
            "variant_id": level.variant_id,
            "product_id": level.variant.product_id,
            "sku": level.variant.sku,
            "quantity": 2,
            "unit_price": "19.99",
        }
    ]
    stock_events = [r for r in rows if r["type"] == "stock.changed"]
    # The stock row's creation, the reservation (phase 1), the sale (phase 3).
    assert [
        (r["payload"]["reason"], r["payload"]["reserved_delta"]) for r in stock_events
    ] == [
        ("initial", 0),
        ("reserve", 2),
        ("sale", -2),
    ]
    cart_events = [r for r in rows if r["aggregate_type"] == "cart"]
    assert kinds(cart_events) == ["cart.item_added", "cart.item_removed"]
    # The line checkout bought says which order took it out of the cart.
    assert cart_events[1]["payload"]["order_id"] == order_id
    assert {r["customer_id"] for r in cart_events} == {customer.pk}
    assert_sequences_gapless(rows)
    assert_no_private_fields(rows)


def test_placed_carries_the_total_after_the_coupon(gateway):
    CouponFactory(code="HALF", percent_off=50)
    customer = CustomerFactory()
    level = StockLevelFactory(quantity_on_hand=5)
    shopper = client_for(customer)
    shopper.post(
        "/api/v1/cart/items/", {"sku": level.variant.sku, "quantity": 2}, format="json"
    )

    response = checkout(shopper, coupon="HALF")

    assert response.status_code == 201, response.json()
    assert response.json()["total"] == "19.99", response.json()
    placed = events(type="order.placed")[0]["payload"]
    assert (placed["subtotal"], placed["discount"], placed["total"]) == (
        "39.98",
        "19.99",
        "19.99",
    )
    assert placed["coupon_id"] is not None
    assert placed["status"] == "pending"


def test_the_sql_function_writes_the_same_events():
    level = StockLevelFactory(quantity_on_hand=5)
    cart = CartFactory()
    CartItemFactory(cart=cart, variant=level.variant, quantity=1)
    before = len(events())

    order_id = place(cart.customer_id)

    rows = events()[before:]
    order_events = [r for r in rows if r["aggregate_type"] == "order"]
    # Inserted already paid: placed, then paid, in that order.
    assert kinds(order_events) == ["order.placed", "order.paid"]
    assert [r["sequence"] for r in order_events] == [1, 2]
    assert order_events[0]["payload"]["lines"][0]["quantity"] == 1
    assert {r["aggregate_id"] for r in order_events} == {order_id}
    assert [r["payload"]["reason"] for r in rows if r["type"] == "stock.changed"] == [
        "sale"
    ]
    assert kinds([r for r in rows if r["aggregate_type"] == "cart"]) == [
        "cart.item_removed"
    ]
    assert_no_private_fields(rows)


def test_the_recovery_procedure_writes_the_release():
    level, order = interrupted_checkout()
    an_hour_ago = timezone.now() - timedelta(hours=1)
    with as_staff():
        Order.objects.filter(pk=order.pk).update(created_at=an_hour_ago)
        IdempotencyKey.objects.update(created_at=an_hour_ago)

    checkout_recover(older_than=timedelta(minutes=15))

    rows = events(aggregate_type="order", aggregate_id=order.pk)
    assert kinds(rows) == ["order.placed", "order.failed"]
    assert [r["sequence"] for r in rows] == [1, 2]
    released = events(type="stock.changed", aggregate_id=level.pk)[-1]
    assert released["payload"]["reason"] == "stale_release"
    assert released["payload"]["reserved_delta"] == -2


def test_a_change_made_in_sql_by_staff_writes_its_event_and_a_refund_too():
    an_hour_ago = timezone.now() - timedelta(hours=1)
    order = OrderFactory(status="paid", created_at=an_hour_ago, paid_at=an_hour_ago)
    with staff_transaction(), connection.cursor() as cursor:
        # The admin, or psql: no service of the shop runs.
        cursor.execute(
            "UPDATE orders_order SET status = 'cancelled', cancelled_at = now()"
            " WHERE id = %s",
            [order.pk],
        )
        cursor.execute(
            "INSERT INTO orders_payment (order_id, amount, status, gateway_reference,"
            " created_at) VALUES (%s, %s, 'refunded', 'r-1', now())",
            [order.pk, order.total],
        )

    rows = events(aggregate_type="order", aggregate_id=order.pk)
    # The factory inserted it paid: placed and paid, then what staff did.
    assert kinds(rows) == [
        "order.placed",
        "order.paid",
        "order.cancelled",
        "order.refunded",
    ]
    assert [r["sequence"] for r in rows] == [1, 2, 3, 4]
    assert rows[3]["payload"]["amount"] == str(order.total)
    assert rows[3]["customer_id"] == order.customer_id


def test_a_rolled_back_change_leaves_no_event():
    level = StockLevelFactory(quantity_on_hand=5)
    before = len(events())
    with pytest.raises(RuntimeError), transaction.atomic():
        with connection.cursor() as cursor:
            cursor.execute(
                "UPDATE catalog_stock_level SET quantity_on_hand = 9 WHERE id = %s",
                [level.pk],
            )
        raise RuntimeError("undo")
    assert len(events()) == before
    with connection.cursor() as cursor:  # and the counter did not move either
        cursor.execute(
            "UPDATE catalog_stock_level SET quantity_on_hand = 9 WHERE id = %s",
            [level.pk],
        )
    assert events(aggregate_id=level.pk, type="stock.changed")[-1]["sequence"] == 2


def test_cart_lines_added_changed_and_removed():
    cart = CartFactory()
    level = StockLevelFactory(quantity_on_hand=5)
    with customer_transaction(cart.customer_id):
        item = CartItemFactory(cart=cart, variant=level.variant, quantity=1)
        type(item).objects.filter(pk=item.pk).update(quantity=4)
        type(item).objects.filter(pk=item.pk).update(quantity=3)
        item.delete()

    rows = events(aggregate_type="cart", aggregate_id=cart.pk)
    assert [(r["type"], r["payload"]["quantity"]) for r in rows] == [
        ("cart.item_added", 1),
        ("cart.item_added", 3),
        ("cart.item_removed", 1),
        ("cart.item_removed", 3),
    ]
    assert [r["sequence"] for r in rows] == [1, 2, 3, 4]


def test_only_a_job_reads_the_outbox():
    customer = CustomerFactory()
    StockLevelFactory(quantity_on_hand=5)  # writes stock.changed
    with customer_transaction(customer.pk):
        assert not OutboxEvent.objects.exists()
    with staff_transaction():
        assert not OutboxEvent.objects.exists()
    with job_transaction("test"):
        assert OutboxEvent.objects.exists()
    # Nobody's context: nothing either, and reports cannot read it at all.
    assert not OutboxEvent.objects.exists()
    params = connections["default"].get_connection_params()
    params.update(user="shop_readonly", password="shop_readonly")
    with (
        psycopg.connect(**params) as readonly,
        pytest.raises(psycopg.errors.InsufficientPrivilege),
    ):
        readonly.execute("SELECT count(*) FROM shop_outbox_event")


def test_the_app_cannot_insert_an_event_or_move_a_counter():
    with (
        pytest.raises(Exception) as insert,
        job_transaction("test"),
        connection.cursor() as cursor,
    ):
        cursor.execute(
            "INSERT INTO shop_outbox_event (type, aggregate_type, aggregate_id,"
            " sequence, payload) VALUES ('stock.changed', 'stock_level', 1, 1, '{}')"
        )
    with (
        pytest.raises(Exception) as counter,
        job_transaction("test"),
        connection.cursor() as cursor,
    ):
        cursor.execute("UPDATE shop_outbox_sequence SET last_sequence = 1")
    assert "permission denied" in str(insert.value)
    assert "permission denied" in str(counter.value)


def test_the_app_cannot_rewrite_an_event():
    StockLevelFactory(quantity_on_hand=5)
    with (
        pytest.raises(Exception) as caught,
        job_transaction("test"),
        connection.cursor() as cursor,
    ):
        cursor.execute("UPDATE shop_outbox_event SET payload = '{}'")
    assert "permission denied" in str(caught.value)


def test_the_backlog_counts_pending_events():
    StockLevelFactory(quantity_on_hand=5)
    StockLevelFactory(quantity_on_hand=5)
    backlog = outbox_backlog()
    assert backlog.pending == 2
    assert backlog.oldest is not None


def test_a_cart_edited_while_checkout_settles_it_does_not_deadlock():
    """Phase 3 deletes the bought lines and then decrements a line that held
    more; a customer edits that line in another tab meanwhile. The cart's
    sequence row is taken at COMMIT (deferred triggers), after every row
    lock, so neither waits for the other in a cycle."""
    cart = CartFactory()
    bought, partly = StockLevelFactory(), StockLevelFactory()
    gone = CartItemFactory(cart=cart, variant=bought.variant, quantity=1)
    kept = CartItemFactory(cart=cart, variant=partly.variant, quantity=3)
    params = connections["default"].get_connection_params()
    params.pop("cursor_factory", None)
    context = "SELECT set_config('app.customer_id', %s, true)"
    with psycopg.connect(**params) as settle, psycopg.connect(**params) as tab:
        for conn in (settle, tab):
            conn.execute("SET lock_timeout = '5s'")
            conn.execute(context, [str(cart.customer_id)])
        settle.execute("DELETE FROM orders_cart_item WHERE id = %s", [gone.pk])
        tab.execute("UPDATE orders_cart_item SET quantity = 5 WHERE id = %s", [kept.pk])
        finished = threading.Event()

        def decrement():
            settle.execute(
                "UPDATE orders_cart_item SET quantity = quantity - 1 WHERE id = %s",
                [kept.pk],
            )
            settle.commit()
            finished.set()

        worker = threading.Thread(target=decrement)
        worker.start()
        time.sleep(0.3)  # the decrement now waits for the tab's row lock
        tab.commit()
        worker.join(timeout=10)
        assert finished.is_set()

    rows = events(aggregate_type="cart", aggregate_id=cart.pk)
    assert [(r["type"], r["payload"]["quantity"]) for r in rows][-3:] == [
        ("cart.item_added", 2),  # the tab: 3 -> 5, committed first
        ("cart.item_removed", 1),  # phase 3's delete
        ("cart.item_removed", 1),  # and its decrement, 5 -> 4
    ]
    assert_sequences_gapless(rows)
