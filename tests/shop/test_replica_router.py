"""The read-replica router: which reads reach the real streaming replica.

Anonymous catalog reads run on the replica and nowhere else; a customer's,
a write's, a transaction's and everything else's on the primary. Query
counts count every alias (tests/replicas.py: queries_by_alias), so a read
that moves from one server to the other shows. The tests are transactional:
the replica sees only committed rows, and tests/dbs.py's wait_for_replica()
waits until it has replayed them.

The faults (a lagging replica, a stopped one, Redis down) are in
test_replica_router_faults.py.
"""

import threading
import time

import pytest
from django.contrib.auth.models import AnonymousUser
from django.db import connections, router, transaction
from django.http import HttpResponse
from django.test import Client, RequestFactory
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from catalog.models import Product
from shop import replica
from shop.accounts.models import Address
from shop.middleware import ReadReplicaMiddleware
from shop.settings import base
from tests.accounts.factories import AddressFactory, CustomerFactory, UserFactory
from tests.catalog.factories import StockLevelFactory
from tests.replicas import (
    REPLICA_DATABASES,
    make_catalog,
    ran,
    replica_ready,
    suite_redis_cache,
)

pytestmark = pytest.mark.django_db(transaction=True, databases=REPLICA_DATABASES)


@pytest.mark.parametrize(
    ("path", "statements"),
    [
        ("/api/v1/products/?page_size=2", 1),
        ("/api/v1/products/?page_size=10", 1),
        # The subtree's ids (raw SQL) and the page.
        ("/api/v1/products/?category=lamps", 2),
        # The product and its variants (a prefetch).
        ("/api/v1/products/lamp-3/", 2),
        ("/api/v1/categories/", 1),
    ],
)
def test_anonymous_catalog_reads_run_on_the_replica_only(
    replica_routing, queries_by_alias, path, statements
):
    make_catalog()
    replica_ready()

    with queries_by_alias() as queries:
        response = APIClient().get(path)

    assert response.status_code == 200
    assert ran(queries) == {"replica": statements}


def test_a_customers_catalog_read_runs_on_the_primary_only(
    replica_routing, queries_by_alias
):
    make_catalog()
    token = Token.objects.create(user=CustomerFactory().user)
    replica_ready()
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {token.key}")

    with queries_by_alias() as queries:
        response = client.get("/api/v1/products/?page_size=10")

    assert response.status_code == 200
    # The token's lookup and the page.
    assert ran(queries) == {"default": 2}


def test_a_logged_in_session_reads_the_primary(replica_routing, queries_by_alias):
    make_catalog(products=2)
    client = Client()
    client.force_login(CustomerFactory().user)
    replica_ready()

    with queries_by_alias() as queries:
        response = client.get("/api/v1/categories/")

    assert response.status_code == 200
    assert set(ran(queries)) == {"default"}


def test_with_replica_reads_off_everything_reads_the_primary(
    replica_routing, queries_by_alias
):
    make_catalog(products=2)
    replica_ready()
    replica_routing.REPLICA_READS = False

    with queries_by_alias() as queries:
        response = APIClient().get("/api/v1/products/")

    assert response.status_code == 200
    assert ran(queries) == {"default": 1}


def decide(method="get", path="/api/v1/products/", **extra):
    """Where ReadReplicaMiddleware sends an anonymous request's reads."""
    request = getattr(RequestFactory(), method)(path, **extra)
    request.user = AnonymousUser()
    seen = []

    def view(request):
        seen.append(router.db_for_read(Product))
        return HttpResponse()

    ReadReplicaMiddleware(view)(request)
    return seen[0]


@pytest.mark.parametrize(
    ("method", "path", "extra", "alias"),
    [
        ("get", "/api/v1/products/", {}, "replica"),
        ("head", "/api/v1/products/", {}, "replica"),
        ("get", "/api/v1/products/some-lamp/", {}, "replica"),
        ("get", "/api/v1/categories/", {}, "replica"),
        # Writes, and reads of what is not the public catalog.
        ("post", "/api/v1/products/", {}, "default"),
        ("patch", "/api/v1/products/some-lamp/", {}, "default"),
        ("get", "/api/v1/stock/SKU-1/", {}, "default"),
        ("get", "/api/v1/cart/", {}, "default"),
        ("get", "/api/v1/no-such-thing/", {}, "default"),
        # A token names a client, and DRF would read the token.
        (
            "get",
            "/api/v1/products/",
            {"HTTP_AUTHORIZATION": "Token abc"},
            "default",
        ),
    ],
)
def test_which_requests_read_the_replica(replica_routing, method, path, extra, alias):
    replica_ready()

    assert decide(method, path, **extra) == alias


def test_without_a_verdict_reads_go_to_the_primary_and_a_probe_starts(replica_routing):
    """A process that has not measured the lag yet does not guess."""
    assert decide() == "default"
    assert replica._monitor.running is not None or replica._monitor.status

    replica_ready()
    assert decide() == "replica"


def test_reads_inside_a_transaction_on_the_primary_stay_there(replica_routing):
    with replica.request_reads("replica"):
        assert router.db_for_read(Product) == "replica"
        with transaction.atomic():
            assert router.db_for_read(Product) == "default"
        with replica.reads_from_primary():
            assert router.db_for_read(Product) == "default"
        assert router.db_for_read(Product) == "replica"
    assert router.db_for_read(Product) == "default"


def test_writes_never_go_to_a_standby(replica_routing):
    make_catalog(products=1)
    replica_ready()
    with replica.request_reads("replica"):
        product = Product.objects.get()
        assert product._state.db == "replica"

        product.name = "Renamed"
        product.save()

    assert product._state.db == "default"
    assert Product.objects.using("default").get().name == "Renamed"


def test_each_request_routes_its_own_reads_concurrently(replica_routing):
    """The choice is per request (a context variable), not per process."""
    barrier = threading.Barrier(3, timeout=10)
    seen = {}

    def serve(name, alias):
        def run():
            if alias is None:  # a thread outside any request: a task, say
                barrier.wait()
                seen[name] = router.db_for_read(Product)
                return
            with replica.request_reads(alias):
                barrier.wait()  # all three are inside their blocks now
                seen[name] = router.db_for_read(Product)

        return threading.Thread(target=run)

    threads = [
        serve("anonymous", "replica"),
        serve("customer", "default"),
        serve("task", None),
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(10)

    assert seen == {"anonymous": "replica", "customer": "default", "task": "default"}


def test_concurrent_requests_without_a_verdict_start_one_probe(replica_routing):
    barrier = threading.Barrier(16, timeout=10)
    before = replica._monitor.probes
    answers = []

    def ask():
        barrier.wait()
        answers.append(replica.replica_status())

    threads = [threading.Thread(target=ask) for _ in range(16)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(10)
    replica.replica_status(wait=True)

    assert replica._monitor.probes - before == 1
    # None of them waited for it: they read the primary meanwhile.
    assert len(answers) == 16


# --- Read-your-writes ------------------------------------------------------


def test_a_write_marks_its_client_for_a_bounded_time(replica_routing):
    replica_routing.CACHES = suite_redis_cache()  # the markers in Redis
    replica_routing.READ_YOUR_WRITES_SECONDS = 0.5
    user = CustomerFactory().user
    variant = StockLevelFactory().variant
    client = Client()
    client.force_login(user)
    session = f"session:{client.session.session_key}"

    response = client.post(
        "/api/v1/cart/items/",
        {"sku": variant.sku, "quantity": 1},
        content_type="application/json",
    )

    assert response.status_code == 201
    assert replica.written_recently(f"user:{user.pk}")
    assert replica.written_recently(session)
    assert not replica.written_recently("user:0", "session:another")
    # The marker expires by itself.
    deadline = time.monotonic() + 5
    while replica.written_recently(f"user:{user.pk}"):
        assert time.monotonic() < deadline, "the marker outlived its window"
        time.sleep(0.05)


def test_an_anonymous_client_that_wrote_reads_the_primary(
    replica_routing, queries_by_alias
):
    make_catalog(products=2)
    replica_ready()
    shopper = Client()
    session = shopper.session  # an anonymous session, saved, with its cookie
    session["seen"] = True
    session.save()

    registered = shopper.post(
        "/api/v1/auth/register/",
        {"email": "new@example.test", "password": "Sh0p-test-pass"},
        content_type="application/json",
    )
    with queries_by_alias() as own:
        shopper.get("/api/v1/products/")
    with queries_by_alias() as others:
        Client().get("/api/v1/products/")

    assert registered.status_code == 201
    assert "replica" not in ran(own) and ran(own)["default"] >= 1
    assert ran(others) == {"replica": 1}


def test_another_clients_catalog_write_leaves_anonymous_reads_on_the_replica(
    replica_routing, queries_by_alias
):
    """Markers that are not the client's own do not move its request.

    The catalog cache marks each version a write moves, and its fills read
    the primary for the entries that write retired
    (tests/catalog/test_cache_replica.py); the request as a whole once
    went to the primary for every catalog write, which left the replica
    idle on a shop that sells every few seconds.
    """
    make_catalog(products=2)
    replica_ready()

    replica.mark_written("catalog:anything", "user:0", "session:another")
    with queries_by_alias() as queries:
        response = APIClient().get("/api/v1/categories/")

    assert response.status_code == 200
    assert ran(queries) == {"replica": 1}


def test_the_default_window_covers_the_worst_lag_the_router_accepts():
    """A read the router sends to the replica READ_YOUR_WRITES_SECONDS after a
    write finds it there: the verdict that allowed it is at most 2 x
    REPLICA_CHECK_SECONDS old and said the lag was under the maximum."""
    worst = base.REPLICA_MAX_LAG_SECONDS + 2 * base.REPLICA_CHECK_SECONDS
    assert worst <= base.READ_YOUR_WRITES_SECONDS


# --- Staff reports on `readonly` ---------------------------------------------


def test_a_staff_report_reads_the_replica_as_shop_readonly_and_as_staff(
    replica_routing, queries_by_alias
):
    AddressFactory.create_batch(3)
    replica_ready()

    with queries_by_alias() as queries, replica.staff_report_transaction() as alias:
        addresses = Address.objects.count()
        with connections[alias].cursor() as cursor:
            cursor.execute("SELECT current_user, pg_is_in_recovery()")
            where = cursor.fetchone()

    assert alias == "readonly"
    assert addresses == 3  # every customer's: a staff context
    assert where == ("shop_readonly", True)
    assert set(ran(queries)) == {"readonly"}


def test_outside_a_staff_context_the_readonly_role_sees_no_customer_row(
    replica_routing,
):
    AddressFactory.create_batch(2)
    replica_ready()

    with transaction.atomic(using="readonly"):
        assert Address.objects.using("readonly").count() == 0


def test_a_staff_report_runs_on_the_primary_inside_reads_from_primary(
    replica_routing, queries_by_alias
):
    AddressFactory.create_batch(2)
    replica_ready()

    with (
        queries_by_alias() as queries,
        replica.reads_from_primary(),
        replica.staff_report_transaction(
            user_id=UserFactory(is_staff=True).pk
        ) as alias,
    ):
        addresses = Address.objects.count()

    assert alias == "default"
    assert addresses == 2
    assert "readonly" not in ran(queries)
