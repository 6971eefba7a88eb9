"""Celery tasks, run by a real worker on the real Redis broker."""

import logging
import time
from datetime import timedelta

import pytest
from celery.contrib.testing.worker import start_worker
from django.conf import settings
from django.utils import timezone

from orders.models import IdempotencyKey, Order
from orders.tasks import checkout_recover_task, idempotency_key_purge_task
from shop.celery import app
from tests.accounts.factories import CustomerFactory
from tests.dbs import ALL_DATABASES, as_staff
from tests.orders.test_idempotency_expiry import keys
from tests.orders.test_plpgsql import interrupted_checkout

pytestmark = pytest.mark.django_db(transaction=True, databases=ALL_DATABASES)


@pytest.fixture
def worker():
    if not settings.REDIS_ENABLED:
        pytest.fail(f"Redis does not answer at {settings.REDIS_URL}: start it first")
    app.conf.task_always_eager = False
    # Celery's worker sets up logging for the whole process (the root
    # logger's level becomes the worker's, ERROR): put it back afterwards,
    # or later tests that read warnings from the log see none.
    root = logging.getLogger()
    level, handlers = root.level, list(root.handlers)
    try:
        # A worker thread in this process, consuming from the real broker;
        # its tasks use their own database connections, as in production.
        with start_worker(
            app, pool="solo", perform_ping_check=False, shutdown_timeout=20
        ):
            yield
    finally:
        app.conf.task_always_eager = True
        root.setLevel(level)
        root.handlers[:] = handlers


def wait_for(condition, timeout=20.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.1)
    return False


def test_a_worker_releases_a_stale_checkout(worker):
    level, order = interrupted_checkout()
    an_hour_ago = timezone.now() - timedelta(hours=1)
    with as_staff():
        Order.objects.filter(pk=order.pk).update(created_at=an_hour_ago)
        IdempotencyKey.objects.update(created_at=an_hour_ago)

    checkout_recover_task.delay()

    def released():
        with as_staff():
            return Order.objects.get(pk=order.pk).status == "failed"

    assert wait_for(released)
    level.refresh_from_db()
    assert level.reserved == 0


def test_a_worker_purges_expired_idempotency_keys(worker, settings):
    customer = CustomerFactory()
    keys(customer, 3, age=timedelta(hours=2))
    kept = keys(customer, 1, age=timedelta(minutes=5))
    settings.IDEMPOTENCY_KEY_RETENTION = 60 * 60

    idempotency_key_purge_task.delay()

    def purged():
        with as_staff():
            return list(IdempotencyKey.objects.values_list("pk", flat=True)) == kept

    assert wait_for(purged)
