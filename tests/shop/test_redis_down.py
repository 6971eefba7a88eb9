"""Redis stops while the shop runs: the shop degrades, and nothing answers 500.

Each test starts a Redis server of its own on a free port and points the
cache and REDIS_URL at it, so that it can kill that server and start it
again on the same port; the machine's own Redis is never touched.

With Redis gone, the catalog is served from the database (its cache falls
back to the rows: tests/catalog/test_cache.py), the rate-limited auth
endpoints and login forms answer 503 `rate_limit_unavailable` with
Retry-After (shop/accounts/api/throttling.py says why not unthrottled), and
/healthz says Redis is down. Once the server
is back, all of it recovers without a restart: nothing about Redis is
decided at import.

Redis is Celery's broker too. The test settings run tasks eagerly, inside
the request, which would hide a request that enqueues a task: with the
broker down, `.delay()` fails, and in production that request would answer
500. The walk with Redis down therefore runs Celery as production does,
sending tasks to a broker on the killed server.
"""

import shutil
import socket
import subprocess
import time

import kombu.exceptions
import pytest
import redis
from django.core.cache.backends.locmem import LocMemCache
from django.test import Client

from orders.tasks import idempotency_key_purge_task
from shop import cache as shop_cache
from shop.celery import app as celery_app
from shop.settings.base import redis_cache
from tests.catalog.factories import StockLevelFactory
from tests.dbs import ALL_DATABASES
from tests.openapi import assert_matches_schema
from tests.shop.every_operation import server_errors, valid_inputs, walk

RATE_LIMITED = ("POST /api/v1/auth/register/", "POST /api/v1/auth/token/")
# The session login forms, outside the schema (shop/accounts/login_throttling.py).
LOGIN_FORMS = ("/admin/login/", "/api-auth/login/")
CATALOG_READS = (
    "GET /api/v1/categories/",
    "GET /api/v1/products/",
    "GET /api/v1/products/{slug}/",
)


def free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class RedisServer:
    """A redis-server process of the test's own, on one port for its life."""

    def __init__(self, workdir, *args, tls=False):
        self.port = free_port()
        self.workdir = workdir
        self.args = args
        self.tls = tls
        self.process = None

    def url(self, db=0, credentials=""):
        return f"redis://{credentials}127.0.0.1:{self.port}/{db}"

    def start(self):
        # With TLS, the port speaks TLS only (--port 0: no plain listener).
        ports = ("--port", "0", "--tls-port") if self.tls else ("--port",)
        self.process = subprocess.Popen(
            [
                "redis-server",
                *ports,
                str(self.port),
                *("--bind", "127.0.0.1", "--save", "", "--appendonly", "no"),
                *("--dir", str(self.workdir), *self.args),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", self.port), 0.1).close()
                return
            except OSError:
                time.sleep(0.02)
        raise RuntimeError(f"redis-server did not listen on {self.port}")

    def kill(self):
        """As a crash or an OOM kill would: no goodbye to the clients."""
        if self.process is not None:
            self.process.kill()
            self.process.wait(10)
            self.process = None


def start_redis(tmp_path, *args, tls=False):
    if shutil.which("redis-server") is None:
        pytest.skip("redis-server is not installed (apt-get install redis-server)")
    server = RedisServer(tmp_path, *args, tls=tls)
    server.start()
    return server


@pytest.fixture
def own_redis(tmp_path, settings):
    """The cache and REDIS_URL on a Redis of this test's own."""
    server = start_redis(tmp_path)
    # Setting CACHES makes Django drop its cache connections (setting_changed).
    settings.REDIS_URL = server.url()
    settings.CACHES = {"default": redis_cache(server.url())}
    yield server
    server.kill()


def forget_broker_connections():
    """Drop Celery's producer pools, so the next task connects to broker_url.

    Celery keeps them for the broker it first sent to; this is what it does
    itself after a fork (Celery._after_fork).
    """
    celery_app._pool = None
    celery_app.amqp._producer_pool = None


@pytest.fixture
def celery_on_own_redis(own_redis):
    """Celery as in production: tasks go to the broker, on own_redis."""
    conf = celery_app.conf
    saved = conf.task_always_eager, conf.broker_url
    conf.task_always_eager = False
    conf.broker_url = own_redis.url(db=1)
    forget_broker_connections()
    yield own_redis
    conf.task_always_eager, conf.broker_url = saved
    forget_broker_connections()


def token(client, user):
    return client.post(
        "/api/v1/auth/token/",
        {"email": user.email, "password": "Sh0p-test-pass"},  # UserFactory's
        content_type="application/json",
    )


def attempt(client):
    """A token request without a password: counted by the rate limits, then 400."""
    return client.post(
        "/api/v1/auth/token/",
        {"email": "a@example.test"},
        content_type="application/json",
    )


def test_the_rate_limits_count_in_the_redis_the_settings_name(own_redis, client):
    """The set-up the tests below rely on: counting happens in own_redis."""
    counter = redis.Redis.from_url(own_redis.url())
    assert counter.dbsize() == 0

    attempt(client)

    assert counter.dbsize() > 0


def test_tasks_go_to_the_broker_on_own_redis_and_fail_once_it_is_down(
    celery_on_own_redis,
):
    """The set-up the walk below relies on: a task enqueued with Redis down fails.

    So a request path that enqueues one would answer 500 in the walk, as it
    would in production, instead of running the task eagerly and passing.
    """
    broker = redis.Redis.from_url(celery_on_own_redis.url(db=1))

    idempotency_key_purge_task.delay()

    assert broker.llen("celery") == 1  # sent, not run here
    celery_on_own_redis.kill()
    with pytest.raises(kombu.exceptions.OperationalError):
        idempotency_key_purge_task.delay()


# The event log's endpoints on an in-process store: with none, they answer
# 503 whatever else is up (tests/conftest.py:event_store_in_process).
@pytest.mark.usefixtures("event_store_in_process")
@pytest.mark.django_db(transaction=True, databases=ALL_DATABASES)
def test_with_redis_down_no_operation_answers_500(celery_on_own_redis):
    own_redis = celery_on_own_redis
    inputs = valid_inputs()
    values, auth, refill_cart = inputs.values, inputs.auth, inputs.refill_cart
    own_redis.kill()

    answers = walk(values, auth, before_each=refill_cart)

    # The walk posts to the browsable API's login form too, if the inventory
    # lists it: counted like the token endpoint, so refused alike.
    logins = tuple(f"POST {page}" for page in LOGIN_FORMS if f"POST {page}" in answers)
    assert not server_errors(answers, allowed=RATE_LIMITED + logins)
    for label in logins:
        assert answers[label].status_code == 503, (label, answers[label].content)
        assert answers[label].json()["code"] == "rate_limit_unavailable"
    for label in CATALOG_READS:
        assert answers[label].status_code == 200, (label, answers[label].content)
    for label in RATE_LIMITED:
        response = answers[label]
        assert response.status_code == 503, (label, response.content)
        assert response.json()["code"] == "rate_limit_unavailable"
        assert "Redis" in response.json()["detail"]
        assert int(response["Retry-After"]) > 0
        method, path = label.split(" ")
        assert_matches_schema(response, path, method)
    health = answers["GET /healthz"]
    assert health.status_code == 200
    assert health.json()["status"] == "degraded"


@pytest.mark.django_db
def test_redis_down_is_a_fast_503_and_its_return_is_seen_without_a_restart(
    own_redis, client, customer_user, caplog
):
    assert token(client, customer_user).status_code == 200

    own_redis.kill()
    started = time.monotonic()
    response = token(client, customer_user)
    elapsed = time.monotonic() - started

    assert response.status_code == 503
    assert elapsed < 2, f"a dead Redis cost {elapsed:.2f}s"
    assert "cannot count the attempt" in caplog.text

    own_redis.start()  # the same port, an empty server

    assert token(client, customer_user).status_code == 200


@pytest.mark.django_db
@pytest.mark.parametrize("page", LOGIN_FORMS)
def test_with_redis_down_a_login_form_is_a_503_not_a_guess(own_redis, page):
    """The login forms check passwords; uncounted, they are not checked."""
    form = {"username": "a@example.test", "password": "guess"}
    assert Client().post(page, form).status_code == 200  # the form, with its error

    own_redis.kill()
    response = Client().post(page, form)

    assert response.status_code == 503, response.content[:300]
    assert response.json()["code"] == "rate_limit_unavailable"
    assert "Redis" in response.json()["detail"]
    assert int(response["Retry-After"]) > 0
    # Showing the form needs no count.
    assert Client().get(page).status_code == 200

    own_redis.start()

    assert Client().post(page, form).status_code == 200


@pytest.mark.django_db(databases=["default", "replica"])
def test_healthz_says_redis_is_down_within_seconds_then_ok_again(own_redis, client):
    assert client.get("/healthz").json()["services"]["redis"] == {"status": "ok"}

    own_redis.kill()
    started = time.monotonic()
    response = client.get("/healthz")
    elapsed = time.monotonic() - started

    assert response.status_code == 200
    assert response.json()["status"] == "degraded"
    assert response.json()["services"]["redis"] == {"status": "down"}
    assert elapsed < 3, f"/healthz took {elapsed:.2f}s to see Redis down"

    own_redis.start()

    body = client.get("/healthz").json()
    assert body["services"]["redis"] == {"status": "ok"}
    assert body["status"] in {"ok", "degraded"}  # MongoDB may be down here


@pytest.mark.django_db(databases=["default", "replica"])
def test_redis_password_in_the_url_is_percent_decoded(tmp_path, settings, client):
    """A password with "@" and a space, which the old hand-written probe broke."""
    server = start_redis(tmp_path, "--requirepass", "p@ss word")
    try:
        right = server.url(credentials=":p%40ss%20word@")
        settings.REDIS_URL = right
        settings.CACHES = {"default": redis_cache(right)}
        assert client.get("/healthz").json()["services"]["redis"]["status"] == "ok"
        response = attempt(client)
        assert response.status_code == 400  # counted, then refused as invalid

        settings.REDIS_URL = server.url(credentials=":wrong@")
        assert client.get("/healthz").json()["services"]["redis"]["status"] == "down"
    finally:
        server.kill()


@pytest.mark.django_db(databases=["default", "replica"])
def test_rediss_urls_speak_tls(tmp_path, settings, client):
    if shutil.which("openssl") is None:
        pytest.skip("openssl is not installed")
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(
        [
            *("openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes"),
            *("-keyout", str(key), "-out", str(cert), "-days", "1"),
            *("-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1"),
        ],
        check=True,
        capture_output=True,
    )
    server = start_redis(
        tmp_path,
        *("--tls-cert-file", str(cert), "--tls-key-file", str(key)),
        *("--tls-ca-cert-file", str(cert), "--tls-auth-clients", "no"),
        *("--requirepass", "p@ss word"),
        tls=True,
    )
    try:
        tls = server.url(credentials=":p%40ss%20word@").replace("redis", "rediss", 1)
        tls += f"?ssl_ca_certs={cert}"
        settings.REDIS_URL = tls
        settings.CACHES = {"default": redis_cache(tls)}
        assert client.get("/healthz").json()["services"]["redis"]["status"] == "ok"
        response = attempt(client)
        assert response.status_code == 400  # counted over TLS, then refused

        # Plain Redis protocol to a port that speaks TLS only.
        settings.REDIS_URL = server.url(credentials=":p%40ss%20word@")
        assert client.get("/healthz").json()["services"]["redis"]["status"] == "down"
    finally:
        server.kill()


def test_one_redis_client_per_url_per_process(settings):
    settings.REDIS_URL = "redis://127.0.0.1:1/0"
    assert shop_cache.redis_client() is shop_cache.redis_client()
    settings.REDIS_URL = "redis://127.0.0.1:2/0"
    assert shop_cache.redis_client().connection_pool.connection_kwargs["port"] == 2


def test_messages_name_redis_without_its_password(settings):
    settings.REDIS_URL = "rediss://shop:s3cret@redis.example:6380/2"
    assert shop_cache.redis_where() == "rediss://redis.example:6380/2"


class RecordingCache(LocMemCache):
    """A local-memory cache that notes every key it is asked about."""

    keys: list[str] = []

    def make_and_validate_key(self, key, version=None):
        self.keys.append(key)
        return super().make_and_validate_key(key, version)


@pytest.mark.django_db
def test_without_redis_catalog_reads_never_touch_the_cache(settings, client):
    """With a cache that is not Redis (REDIS_URL empty: a local-memory cache
    per process), the catalog cache is off, since entries in one process
    could not be retired by a write in another (catalog/cache/): catalog
    reads then use no cache at all. With Redis, they do, and fall back to
    the database when it fails
    (tests/catalog/test_cache.py:test_with_redis_down_reads_come_from_the_database_then_the_cache_again)."""
    path = f"{RecordingCache.__module__}.{RecordingCache.__qualname__}"
    settings.CACHES = {"default": {"BACKEND": path}}
    RecordingCache.keys.clear()
    product = StockLevelFactory().variant.product

    for url in (
        "/api/v1/categories/",
        "/api/v1/products/",
        f"/api/v1/products/{product.slug}/",
    ):
        assert client.get(url).status_code == 200, url
    assert RecordingCache.keys == []

    # The control: a rate-limited endpoint does count in it.
    attempt(client)
    assert RecordingCache.keys
