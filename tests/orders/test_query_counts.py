"""List endpoints run a fixed number of queries, whatever the page size.

Transactional, so that each request opens its transactions as in production:
inside a test-wide transaction the customer context would be nested, and a
nested context costs one statement more (shop/db_context.py). Clients log in
with a real token, so the counts include what authentication costs.
"""

import pytest

from tests.clients import token_client
from tests.dbs import ALL_DATABASES
from tests.orders.factories import CartItemFactory, OrderFactory, OrderLineFactory

pytestmark = pytest.mark.django_db(transaction=True, databases=ALL_DATABASES)


def order_with_lines(customer, lines=2):
    order = OrderFactory(customer=customer)
    OrderLineFactory.create_batch(lines, order=order, quantity=2)
    return order


@pytest.mark.parametrize("page_size", [2, 10])
def test_the_order_list_is_the_context_and_two_queries_at_any_page_size(
    customer, django_assert_num_queries, page_size
):
    for _ in range(12):
        order_with_lines(customer)
    client = token_client(customer.user)

    # The token with its user and customer (one join), then one transaction:
    # BEGIN, the customer context (one set_config() round trip), one query
    # for the page of orders and one for all their lines (prefetch), COMMIT.
    with django_assert_num_queries(6):
        response = client.get(f"/api/v1/orders/?page_size={page_size}")

    assert len(response.json()["results"]) == page_size
    assert all(len(o["lines"]) == 2 for o in response.json()["results"])


@pytest.mark.parametrize("items", [1, 8])
def test_the_cart_is_the_context_and_one_query_for_any_number_of_lines(
    django_assert_num_queries, items
):
    first = CartItemFactory()
    for _ in range(items - 1):
        CartItemFactory(cart=first.cart)
    client = token_client(first.cart.customer.user)

    # The token with its user and customer; BEGIN, the customer context, the
    # lines with their variants, COMMIT.
    with django_assert_num_queries(5):
        response = client.get("/api/v1/cart/")

    assert len(response.json()["items"]) == items
