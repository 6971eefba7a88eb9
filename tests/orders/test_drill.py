"""The drill client (manage.py drill_checkouts) reports exactly what it placed.

The crash test and the point-in-time recovery drill trust its lines as the
orders a client was told are placed: each line must be a paid order, with
its total, and every order it paid must have a line.
"""

import io
import json

import pytest
from django.core.management import CommandError, call_command

from orders.models import Order
from tests.accounts.factories import CustomerFactory
from tests.catalog.factories import StockLevelFactory
from tests.dbs import ALL_DATABASES, as_staff

pytestmark = [
    pytest.mark.concurrency,
    pytest.mark.django_db(transaction=True, databases=ALL_DATABASES),
]


def test_the_drill_prints_exactly_the_orders_it_placed(gateway):
    for _ in range(4):
        StockLevelFactory(quantity_on_hand=100)
    for _ in range(4):
        CustomerFactory()
    out = io.StringIO()

    call_command(
        "drill_checkouts",
        "--count",
        "16",
        "--workers",
        "2",
        stdout=out,
        stderr=io.StringIO(),
    )

    acks = [json.loads(line) for line in out.getvalue().splitlines()]
    assert 0 < len(acks) <= 16
    with as_staff():
        paid = {
            order.pk: (str(order.total), order.status, order.customer_id)
            for order in Order.objects.filter(status=Order.Status.PAID)
        }
    assert {
        ack["order"]: (ack["total"], ack["status"], ack["customer"]) for ack in acks
    } == paid


def test_the_drill_refuses_an_empty_shop():
    with pytest.raises(CommandError, match="seed the database first"):
        call_command("drill_checkouts", "--count", "1", stdout=io.StringIO())
