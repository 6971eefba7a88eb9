"""GET /healthz: statuses for anyone, details for staff, and the right overall.

Services are taken away by pointing their settings at a port where nothing
listens (a socket bound but never listening refuses every connection): the
replica aliases for a stopped standby, MONGO_URL for a stopped MongoDB (no
MongoDB server runs here), `default` for a stopped primary. The real servers
are never stopped. tests/shop/test_redis_down.py does the same for Redis with
a server of its own.
"""

import socket
import threading
import time
from datetime import UTC, datetime, timedelta

import pytest
from django.db import connections
from rest_framework.authtoken.models import Token

from shop import health
from shop.celery import app as celery_app
from shop.outbox import outbox_backlog
from tests.accounts.factories import CustomerFactory, UserFactory
from tests.catalog.factories import StockLevelFactory
from tests.dbs import ALL_DATABASES
from tests.shop.every_operation import server_errors, valid_inputs, walk

pytestmark = pytest.mark.django_db(databases=["default", "replica"])

SERVICES = {"postgres", "replica", "redis", "mongo", "broker", "wal_archive"}
REPLICA_ALIASES = ("replica", "readonly")


@pytest.fixture
def dead_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        yield sock.getsockname()[1]


@pytest.fixture
def staff_token(db):
    return f"Token {Token.objects.create(user=UserFactory(is_staff=True)).key}"


@pytest.fixture(autouse=True)
def fresh_log_limits():
    """Each test sees the first "is down" line of its own outages."""
    health._logged_at.clear()
    yield
    health._logged_at.clear()


@pytest.fixture
def mongo_clients():
    """Close the MongoDB clients a test made, and forget them."""
    yield health._mongo_clients
    for client in health._mongo_clients.values():
        client.close()
    health._mongo_clients.clear()


@pytest.fixture
def replica_stopped(dead_port, monkeypatch):
    """Both aliases on the standby's server point where nothing listens."""
    for alias in REPLICA_ALIASES:
        connections[alias].close()
        monkeypatch.setitem(connections[alias].settings_dict, "PORT", str(dead_port))
    yield
    for alias in REPLICA_ALIASES:
        connections[alias].close()


def statuses_only(body):
    return set(body) == {"status", "services"} and all(
        set(service) == {"status"} for service in body["services"].values()
    )


def archiver_now():
    """The WAL archiver's verdict, read apart from /healthz.

    Another suite on the same primary may break archive_command for a
    moment (tests/shop/test_backup.py does): the expected answer follows it.
    """
    with connections["default"].cursor() as cursor:
        cursor.execute(health.read_sql("shop/sql/queries/wal_archive_v01.sql"))
        names = [column.name for column in cursor.description]
        return health.archive_state(dict(zip(names, cursor.fetchone(), strict=True)))


def test_anonymous_callers_get_statuses_only(client, settings):
    settings.MONGO_URL = ""

    response = client.get("/healthz")

    assert response.status_code == 200
    body = response.json()
    assert set(body["services"]) == SERVICES
    assert statuses_only(body), body
    archive = archiver_now()["status"]
    assert body == {
        "status": "ok" if archive == "ok" else "degraded",
        "services": {
            "postgres": {"status": "ok"},
            "replica": {"status": "ok"},
            "redis": {"status": "ok"},
            "mongo": {"status": "disabled"},
            "broker": {"status": "ok"},
            "wal_archive": {"status": archive},
        },
    }


def test_staff_see_versions_lag_and_why_a_service_is_off(client, staff_token):
    body = client.get("/healthz", HTTP_AUTHORIZATION=staff_token).json()

    services = body["services"]
    assert services["postgres"]["version"].startswith(("15.", "16.", "17."))
    assert services["replica"]["lag_seconds"] >= 0
    assert services["replica"]["version"]
    assert services["redis"]["version"]
    assert services["mongo"]["status"] != "disabled" or services["mongo"]["detail"]


def test_staff_logged_in_by_session_see_them_too(client):
    client.force_login(UserFactory(is_staff=True))

    body = client.get("/healthz").json()

    assert "lag_seconds" in body["services"]["replica"]


@pytest.mark.parametrize(
    "authorization",
    ["customer", "Token " + "0" * 40, "Token not-a-token", "Basic abc"],
)
def test_customers_and_bad_tokens_get_statuses_only(client, authorization):
    if authorization == "customer":
        user = CustomerFactory().user
        authorization = f"Token {Token.objects.create(user=user).key}"

    response = client.get("/healthz", HTTP_AUTHORIZATION=authorization)

    assert response.status_code == 200
    assert statuses_only(response.json())


@pytest.mark.django_db(transaction=True, databases=ALL_DATABASES)
def test_a_stopped_replica_is_degraded_not_down(
    replica_stopped, client, staff_token, caplog
):
    started = time.monotonic()
    response = client.get("/healthz")
    elapsed = time.monotonic() - started

    assert response.status_code == 200
    assert response.json()["status"] == "degraded"
    assert response.json()["services"]["replica"] == {"status": "down"}
    assert response.json()["services"]["postgres"] == {"status": "ok"}
    assert elapsed < 2, f"/healthz took {elapsed:.2f}s with the replica stopped"
    # The reason goes to the log, and to staff.
    assert "healthz: replica is down: " in caplog.text
    staff = client.get("/healthz", HTTP_AUTHORIZATION=staff_token).json()
    assert "refused" in staff["services"]["replica"]["error"].lower()


# The event log's endpoints on an in-process store: with none, they answer
# 503 whatever else is up (tests/conftest.py:event_store_in_process).
@pytest.mark.usefixtures("event_store_in_process")
@pytest.mark.django_db(transaction=True, databases=ALL_DATABASES)
def test_no_api_operation_uses_the_replica(replica_stopped, monkeypatch):
    """With the standby stopped, everything answers; only /healthz asks it."""
    inputs = valid_inputs()
    values, auth, refill_cart = inputs.values, inputs.auth, inputs.refill_cart
    asked, current = set(), []

    for alias in REPLICA_ALIASES:
        connect = connections[alias].ensure_connection

        def spy(connect=connect):
            asked.add(current[-1])
            return connect()

        monkeypatch.setattr(connections[alias], "ensure_connection", spy)

    def before_each(label):
        refill_cart()
        current.append(label)

    answers = walk(values, auth, before_each=before_each)

    assert not server_errors(answers)
    assert asked == {"GET /healthz"}
    assert answers["GET /healthz"].json()["status"] == "degraded"


def test_a_stopped_mongodb_is_degraded_and_one_client_serves_every_request(
    client, settings, dead_port, mongo_clients
):
    settings.MONGO_URL = f"mongodb://127.0.0.1:{dead_port}/?directConnection=true"

    started = time.monotonic()
    responses = [client.get("/healthz") for _ in range(5)]
    elapsed = time.monotonic() - started

    for response in responses:
        assert response.status_code == 200
        assert response.json()["status"] == "degraded"
        assert response.json()["services"]["mongo"] == {"status": "down"}
    assert elapsed < 5 * 2, f"five calls took {elapsed:.2f}s"
    # One client, so one monitor thread, however many requests: a client per
    # request leaked a monitor thread each time.
    assert len(mongo_clients) == 1
    assert health.mongo_client() is health.mongo_client()
    monitors = [
        t for t in threading.enumerate() if t.name.startswith("pymongo_server_monitor")
    ]
    assert len(monitors) == 1


@pytest.fixture
def primary_at(monkeypatch):
    """Point `default` (its pool and /healthz's own check) at another port."""
    default = connections["default"]

    def move(port):
        default.close()
        # Then close the pool: one built in between would keep the old port.
        monkeypatch.setitem(default.settings_dict, "PORT", str(port))
        default.close_pool()

    yield move
    default.close()
    default.close_pool()


@pytest.mark.django_db(transaction=True, databases=ALL_DATABASES)
def test_a_stopped_primary_is_down_and_a_503(dead_port, primary_at, client):
    primary_at(dead_port)

    started = time.monotonic()
    response = client.get("/healthz")
    elapsed = time.monotonic() - started

    assert response.status_code == 503
    body = response.json()
    assert body["status"] == "down"
    assert body["services"]["postgres"] == {"status": "down"}
    assert statuses_only(body)
    # Its own connection, refused at once: not a wait for the pool's timeout.
    assert elapsed < 2, f"/healthz took {elapsed:.2f}s with the primary stopped"


@pytest.fixture
def silent_port():
    """A port that accepts connections and never says a word on them."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen(16)  # the kernel completes the handshakes; nobody reads
        yield sock.getsockname()[1]


@pytest.mark.django_db(transaction=True, databases=ALL_DATABASES)
def test_a_primary_that_hangs_is_down_within_the_probe_timeout(
    silent_port, primary_at, client
):
    """Inside docker compose's 8 s probe, however the primary fails."""
    primary_at(silent_port)

    started = time.monotonic()
    response = client.get("/healthz")
    elapsed = time.monotonic() - started

    assert response.status_code == 503
    assert response.json()["services"]["postgres"] == {"status": "down"}
    assert elapsed < health.PRIMARY_TIMEOUT + 1.5, f"/healthz took {elapsed:.2f}s"


@pytest.fixture
def small_pool(monkeypatch):
    """`default` on a pool of two connections, built afresh for the test."""
    default = connections["default"]
    default.close()
    default.close_pool()
    options = {**default.settings_dict["OPTIONS"]["pool"], "max_size": 2}
    monkeypatch.setitem(default.settings_dict["OPTIONS"], "pool", options)
    pool = default.pool
    pool.open(wait=True)
    held = []
    yield pool, held
    for connection in held:
        pool.putconn(connection)
    default.close()
    default.close_pool()


@pytest.mark.django_db(transaction=True, databases=ALL_DATABASES)
def test_an_exhausted_pool_is_not_an_outage(small_pool, client):
    """Every connection busy and a request waiting: the primary is still ok."""
    pool, held = small_pool
    held += [pool.getconn() for _ in range(2)]
    waiter = threading.Thread(target=lambda: pool.putconn(pool.getconn(timeout=5)))
    waiter.start()
    while not pool.get_stats().get("requests_waiting"):
        time.sleep(0.01)

    started = time.monotonic()
    response = client.get("/healthz")
    elapsed = time.monotonic() - started
    pool.putconn(held.pop())  # the waiter's turn
    waiter.join()

    assert response.status_code == 200
    assert response.json()["services"]["postgres"] == {"status": "ok"}
    assert response.json()["status"] in {"ok", "degraded"}  # MongoDB may be down
    # Anonymous callers take no connection from the pool, so none waits.
    assert elapsed < 2, f"/healthz took {elapsed:.2f}s with the pool exhausted"


@pytest.mark.django_db(transaction=True, databases=ALL_DATABASES)
def test_staff_see_how_full_the_pool_is(small_pool, client):
    pool, held = small_pool
    token = Token.objects.create(user=UserFactory(is_staff=True)).key
    connections["default"].close()  # the test's own goes back to the pool
    held.append(pool.getconn())

    # The staff lookup takes the pool's last connection.
    body = client.get("/healthz", HTTP_AUTHORIZATION=f"Token {token}").json()

    assert body["services"]["postgres"]["status"] == "ok"
    assert body["services"]["postgres"]["pool"] == {
        "status": "full",
        "in_use": 2,
        "idle": 0,
        "max_size": 2,
        "waiting": 0,
    }


@pytest.mark.parametrize(
    ("stats", "verdict"),
    [
        ({"pool_size": 3, "pool_available": 1, "pool_max": 10}, "ok"),
        ({"pool_size": 10, "pool_available": 1, "pool_max": 10}, "ok"),
        ({"pool_size": 10, "pool_available": 0, "pool_max": 10}, "full"),
        (
            {
                "pool_size": 10,
                "pool_available": 0,
                "pool_max": 10,
                "requests_waiting": 4,
            },
            "exhausted",
        ),
    ],
)
def test_the_pools_verdict(stats, verdict):
    assert health.pool_state(stats)["status"] == verdict


def test_anonymous_probes_fetch_no_versions(client, staff_token, monkeypatch):
    asked = []
    monkeypatch.setattr(health, "redis_version", lambda: asked.append("redis"))

    client.get("/healthz")
    assert asked == []

    client.get("/healthz", HTTP_AUTHORIZATION=staff_token)
    assert asked == ["redis"]


def test_a_service_down_is_logged_once_a_minute_not_per_probe(
    client, settings, dead_port, mongo_clients, caplog
):
    settings.MONGO_URL = f"mongodb://127.0.0.1:{dead_port}/?directConnection=true"
    said = "healthz: mongo is down"

    for _ in range(3):
        client.get("/healthz")
    assert caplog.text.count(said) == 1

    # A minute later it is said again.
    health._logged_at["mongo"] -= health.LOG_EVERY
    client.get("/healthz")
    assert caplog.text.count(said) == 2


def test_staff_see_the_outbox_backlog_and_others_do_not(client, staff_token, settings):
    settings.MONGO_URL = ""
    # Other tests may have left committed events behind: count from here.
    before = outbox_backlog().pending
    StockLevelFactory(quantity_on_hand=5)  # one stock.changed, pending

    staff = client.get("/healthz", HTTP_AUTHORIZATION=staff_token).json()
    anonymous = client.get("/healthz").json()

    mongo = staff["services"]["mongo"]
    assert mongo["status"] == "disabled"
    assert "events stay in the outbox" in mongo["detail"]
    assert mongo["outbox"]["pending"] == before + 1
    assert mongo["outbox"]["oldest_pending_at"]
    assert anonymous["services"]["mongo"] == {"status": "disabled"}


# --- the broker and the WAL archive ------------------------------------------


def test_a_stopped_broker_is_degraded_not_down(client, dead_port, monkeypatch, caplog):
    monkeypatch.setattr(
        celery_app.conf, "broker_url", f"redis://127.0.0.1:{dead_port}/0"
    )

    started = time.monotonic()
    response = client.get("/healthz")
    elapsed = time.monotonic() - started

    assert response.status_code == 200
    assert response.json()["status"] == "degraded"
    assert response.json()["services"]["broker"] == {"status": "down"}
    assert elapsed < 2, f"/healthz took {elapsed:.2f}s with the broker stopped"
    assert "healthz: broker is down: " in caplog.text


def test_a_broker_that_hangs_is_down_within_its_timeout(
    client, silent_port, monkeypatch
):
    monkeypatch.setattr(
        celery_app.conf, "broker_url", f"redis://127.0.0.1:{silent_port}/0"
    )

    started = time.monotonic()
    response = client.get("/healthz")
    elapsed = time.monotonic() - started

    assert response.json()["services"]["broker"] == {"status": "down"}
    assert elapsed < health.BROKER_TIMEOUT + 1, f"/healthz took {elapsed:.2f}s"


def test_without_redis_the_broker_is_disabled(client, settings, staff_token):
    settings.REDIS_ENABLED = False

    staff = client.get("/healthz", HTTP_AUTHORIZATION=staff_token).json()

    broker = staff["services"]["broker"]
    assert broker["status"] == "disabled"
    assert "inside the request" in broker["detail"]


def test_staff_see_the_wal_archivers_progress_and_others_do_not(client, staff_token):
    staff = client.get("/healthz", HTTP_AUTHORIZATION=staff_token).json()
    anonymous = client.get("/healthz").json()

    archive = staff["services"]["wal_archive"]
    assert archive["status"] in {"ok", "failing"}  # archive_mode is on here
    assert set(archive) == {
        "status",
        "failed_count",
        "last_archived_wal",
        "last_archived_time",
        "last_failed_wal",
        "last_failed_time",
    }
    assert archive["failed_count"] >= 0
    assert archive["last_archived_wal"]  # services.sh's primary has archived
    assert anonymous["services"]["wal_archive"] == {"status": archive["status"]}


def archiver_row(*, mode="on", archived=None, failed=None):
    t0 = datetime(2026, 1, 1, tzinfo=UTC)
    return {
        "archive_mode": mode,
        "archived_count": 0 if archived is None else 5,
        "last_archived_wal": None if archived is None else "00000001000000000000000A",
        "last_archived_time": None if archived is None else t0 + archived,
        "failed_count": 0 if failed is None else 2,
        "last_failed_wal": None if failed is None else "00000001000000000000000B",
        "last_failed_time": None if failed is None else t0 + failed,
    }


@pytest.mark.parametrize(
    ("row", "verdict"),
    [
        (archiver_row(mode="off"), "disabled"),
        (archiver_row(), "ok"),  # nothing to archive yet
        (archiver_row(archived=timedelta(0)), "ok"),
        # A failure that a later success ended: archive_command retried it.
        (archiver_row(archived=timedelta(1), failed=timedelta(0)), "ok"),
        (archiver_row(archived=timedelta(0), failed=timedelta(1)), "failing"),
        (archiver_row(failed=timedelta(0)), "failing"),  # never archived
    ],
    ids=["off", "new", "archived", "recovered", "failing", "never-archived"],
)
def test_the_wal_archivers_verdict(row, verdict):
    assert health.archive_state(row)["status"] == verdict


def test_a_failing_archive_makes_the_shop_degraded_not_down(
    client, monkeypatch, caplog
):
    # The verdict of a real failing archiver's row: breaking archive_command
    # on the shared primary would fail the other suites' backups meanwhile
    # (the backup drill does that on its own, tests/shop/test_backup.py).
    failing = archiver_row(archived=timedelta(0), failed=timedelta(1))
    monkeypatch.setattr(health, "_archiver", lambda _: health.archive_state(failing))

    response = client.get("/healthz")

    assert response.status_code == 200
    assert response.json()["status"] == "degraded"
    assert response.json()["services"]["wal_archive"] == {"status": "failing"}
    assert "healthz: the WAL archiver is failing" in caplog.text


@pytest.mark.django_db(transaction=True, databases=ALL_DATABASES)
def test_with_the_primary_stopped_the_archive_is_unknown(dead_port, primary_at, client):
    primary_at(dead_port)

    body = client.get("/healthz").json()

    assert body["status"] == "down"
    assert body["services"]["wal_archive"] == {"status": "unknown"}


# --- liveness and readiness -----------------------------------------------------


@pytest.mark.django_db(transaction=True, databases=ALL_DATABASES)
def test_liveness_answers_with_every_service_gone(
    dead_port, primary_at, client, settings, monkeypatch
):
    primary_at(dead_port)
    settings.MONGO_URL = f"mongodb://127.0.0.1:{dead_port}/?directConnection=true"
    monkeypatch.setattr(
        celery_app.conf, "broker_url", f"redis://127.0.0.1:{dead_port}/0"
    )

    started = time.monotonic()
    response = client.get("/livez")
    elapsed = time.monotonic() - started

    assert response.status_code == 200
    assert response.json() == {"status": "ok"}
    assert elapsed < 0.5, f"/livez took {elapsed:.2f}s"


def test_liveness_runs_no_sql(client, django_assert_num_queries):
    with django_assert_num_queries(0):
        assert client.get("/livez").status_code == 200


def test_a_ready_node_says_ok_and_nothing_else(client, staff_token):
    for authorization in ("", staff_token):
        response = client.get("/readyz", HTTP_AUTHORIZATION=authorization)
        assert response.status_code == 200
        assert response.json() == {"status": "ok"}


@pytest.mark.django_db(transaction=True, databases=ALL_DATABASES)
def test_a_node_whose_optional_services_are_down_stays_ready(
    replica_stopped, client, settings, dead_port, monkeypatch, mongo_clients
):
    settings.MONGO_URL = f"mongodb://127.0.0.1:{dead_port}/?directConnection=true"
    monkeypatch.setattr(
        celery_app.conf, "broker_url", f"redis://127.0.0.1:{dead_port}/0"
    )

    health_body = client.get("/healthz").json()
    ready = client.get("/readyz")

    assert health_body["status"] == "degraded"
    assert ready.status_code == 200
    assert ready.json() == {"status": "ok"}


@pytest.mark.django_db(transaction=True, databases=ALL_DATABASES)
def test_a_node_without_its_primary_is_not_ready(dead_port, primary_at, client):
    primary_at(dead_port)

    started = time.monotonic()
    response = client.get("/readyz")
    elapsed = time.monotonic() - started

    assert response.status_code == 503
    body = response.json()
    assert body["status"] == "down"
    assert set(body) == {"status", "detail"}  # no host, port or driver text
    assert elapsed < 2, f"/readyz took {elapsed:.2f}s with the primary stopped"


@pytest.mark.django_db(transaction=True, databases=ALL_DATABASES)
def test_a_primary_that_hangs_makes_the_node_unready_within_the_probe_timeout(
    silent_port, primary_at, client
):
    primary_at(silent_port)

    started = time.monotonic()
    response = client.get("/readyz")
    elapsed = time.monotonic() - started

    assert response.status_code == 503
    assert elapsed < health.PRIMARY_TIMEOUT + 1.5, f"/readyz took {elapsed:.2f}s"
