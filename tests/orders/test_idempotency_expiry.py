"""Completed idempotency keys expire: purged in bounded batches by a beat task.

Transactional: the purge commits each batch, and refuses to run inside a
transaction, where its batches would become one long one.
"""

from datetime import timedelta

import pytest
from django.db import connection, connections, transaction
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from orders.models import IdempotencyKey
from orders.services import idempotency_key_purge
from orders.tasks import idempotency_key_purge_task
from shop.db_context import job_transaction
from shop.settings import base
from shop.sql_files import read_sql
from tests.accounts.factories import CustomerFactory
from tests.catalog.factories import StockLevelFactory
from tests.dbs import ALL_DATABASES, as_staff
from tests.orders.conftest import checkout, client_for
from tests.orders.factories import CartItemFactory

pytestmark = pytest.mark.django_db(transaction=True, databases=ALL_DATABASES)
DAY = timedelta(days=1)


def keys(customer, count, *, age, completed=True):
    """`count` keys of `customer`, last touched `age` ago."""
    then = timezone.now() - age
    status = "completed" if completed else "in_progress"
    response = {"response_status": 201, "response_body": {}} if completed else {}
    with as_staff():
        return [
            IdempotencyKey.objects.create(
                customer=customer,
                key=f"{status}-{age}-{n}",
                request_fingerprint="f",
                status=status,
                created_at=then,
                updated_at=then,
                **response,
            ).pk
            for n in range(count)
        ]


def remaining():
    with as_staff():
        return set(IdempotencyKey.objects.values_list("pk", flat=True))


def test_only_completed_keys_past_the_retention_are_purged():
    customer = CustomerFactory()
    old = keys(customer, 3, age=2 * DAY)
    recent = keys(customer, 2, age=timedelta(hours=1))
    running = keys(customer, 2, age=2 * DAY, completed=False)

    purged = idempotency_key_purge(older_than=DAY)

    assert purged == len(old)
    assert remaining() == set(recent + running)


def test_the_purge_works_in_bounded_batches_each_its_own_transaction():
    customer = CustomerFactory()
    old = keys(customer, 5, age=2 * DAY)

    with CaptureQueriesContext(connection) as captured:
        purged = idempotency_key_purge(older_than=DAY, batch_size=2, max_batches=2)

    assert purged == 4
    assert len(remaining()) == 1 and remaining() < set(old)
    deletes = [q for q in captured if q["sql"].startswith("-- Delete one batch")]
    assert len(deletes) == 2
    # Each batch in a job transaction of its own.
    assert sum(q["sql"] == "BEGIN" for q in captured) == 2

    assert idempotency_key_purge(older_than=DAY, batch_size=2) == 1
    assert remaining() == set()


def test_the_beat_task_purges_with_the_retention_setting(settings):
    customer = CustomerFactory()
    keys(customer, 2, age=3 * timedelta(hours=1))
    kept = keys(customer, 1, age=timedelta(minutes=30))
    settings.IDEMPOTENCY_KEY_RETENTION = 2 * 60 * 60

    result = idempotency_key_purge_task.delay()

    assert result.get() == 2
    assert remaining() == set(kept)


def test_the_purge_refuses_to_run_inside_a_transaction():
    with transaction.atomic(), pytest.raises(RuntimeError, match="outside atomic"):
        idempotency_key_purge(older_than=DAY)


def test_the_default_retention_is_a_day():
    assert base.IDEMPOTENCY_KEY_RETENTION == 24 * 60 * 60
    assert base.CELERY_BEAT_SCHEDULE["idempotency-key-purge"]["task"] == (
        "orders.tasks.idempotency_key_purge_task"
    )


def test_the_purge_finds_its_batch_by_the_partial_index():
    """Chapter 10's figures: 5,000 completed keys, 50 of them expired."""
    customer = CustomerFactory()
    then = timezone.now() - 2 * DAY
    # A few thousand keys, most of them recent: the purge must not read them.
    with as_staff(), connection.cursor() as cursor:
        cursor.execute(
            "INSERT INTO orders_idempotency_key (customer_id, key, "
            "request_fingerprint, status, response_status, response_body, "
            "created_at, updated_at) "
            "SELECT %s, 'k' || n, 'f', 'completed', 201, '{}', t, t "
            "FROM generate_series(1, 5000) AS n, "
            "LATERAL (SELECT CASE WHEN n <= 50 THEN %s ELSE now() END AS t) AS at",
            [customer.pk, then],
        )
    with connections["owner"].cursor() as cursor:
        cursor.execute("ANALYZE orders_idempotency_key")
    purge = read_sql("orders/sql/queries/idempotency_key_purge_v01.sql")
    params = {"cutoff": timezone.now() - DAY, "batch_size": 1000}

    with job_transaction("test"), connection.cursor() as cursor:
        cursor.execute("EXPLAIN " + purge, params)
        plan = "\n".join(row for (row,) in cursor.fetchall())
        # The same statement where the planner may not use an index: what
        # the partial index saves.
        cursor.execute("SET LOCAL enable_indexscan = off")
        cursor.execute("SET LOCAL enable_bitmapscan = off")
        cursor.execute("EXPLAIN " + purge, params)
        without = "\n".join(row for (row,) in cursor.fetchall())

    assert "Index Scan using orders_idem_key_completed_idx" in plan, plan
    assert "Sort" not in plan, plan
    assert "Seq Scan on orders_idempotency_key" in without, without
    assert "Sort" in without, without
    assert idempotency_key_purge(older_than=DAY) == 50


def test_a_replay_after_the_key_expired_is_a_new_checkout():
    level = StockLevelFactory(quantity_on_hand=5)
    client = client_for(CartItemFactory(variant=level.variant).cart.customer)
    assert checkout(client, key="k").status_code == 201
    # A retention of zero: as if the day had passed (updated_at is kept by a
    # trigger, so the key cannot simply be made older).
    assert idempotency_key_purge(older_than=timedelta(0)) == 1

    replay = checkout(client, key="k")

    # A fresh checkout of the cart the first one emptied.
    assert (replay.status_code, replay.json()["code"]) == (400, "cart_empty")
