"""Deadlocks, serialization failures and lock timeouts, with real connections."""

import threading

import pytest
from django.db import connection, transaction

from catalog.models import StockLevel
from shop.db_retry import retry_on_conflict
from tests.catalog.factories import StockLevelFactory, VariantFactory
from tests.concurrency import one_shot, run_concurrently
from tests.dbs import ALL_DATABASES
from tests.orders.conftest import checkout, client_for
from tests.orders.factories import CartItemFactory

pytestmark = [
    pytest.mark.concurrency,
    pytest.mark.django_db(transaction=True, databases=ALL_DATABASES),
]


def test_a_real_deadlock_is_retried_and_both_transactions_finish():
    first = StockLevelFactory(quantity_on_hand=10)
    second = StockLevelFactory(
        quantity_on_hand=10, variant=VariantFactory(), warehouse=first.warehouse
    )
    both_hold_one = threading.Barrier(2)
    attempts = []

    def transfer(a, b):
        def work():
            attempts.append(threading.current_thread().name)
            with transaction.atomic():
                StockLevel.objects.select_for_update().get(pk=a.pk)
                # Only the first attempt waits for the other: then each holds
                # one row and wants the other's, the textbook deadlock.
                one_shot_wait()
                StockLevel.objects.select_for_update().get(pk=b.pk)
                StockLevel.objects.filter(pk__in=[a.pk, b.pk]).update(reserved=1)

        return retry_on_conflict(work, attempts=3)

    one_shot_wait = one_shot(both_hold_one.wait)

    _, errors = run_concurrently(
        [lambda: transfer(first, second), lambda: transfer(second, first)]
    )

    assert errors == [None, None]
    # PostgreSQL aborted one of them (40P01); its retry then went through.
    assert len(attempts) == 3


def test_a_lock_held_elsewhere_turns_into_a_503_not_a_hang_or_a_500():
    level = StockLevelFactory(quantity_on_hand=5)
    item = CartItemFactory(variant=level.variant)
    client = client_for(item.cart.customer)
    locked, done = threading.Event(), threading.Event()

    def hold_the_row():
        with transaction.atomic():
            StockLevel.objects.select_for_update().get(pk=level.pk)
            locked.set()
            done.wait(30)
        connection.close()

    holder = threading.Thread(target=hold_the_row)
    holder.start()
    try:
        assert locked.wait(30)
        response = checkout(client, key="retry-me")
    finally:
        done.set()
        holder.join(30)

    assert response.status_code == 503
    assert response.json()["code"] == "busy"
    assert response["Retry-After"] == "1"
    level.refresh_from_db()
    assert level.reserved == 0
    # The key was freed: the same request can simply be retried.
    assert checkout(client, key="retry-me").status_code == 201
