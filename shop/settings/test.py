"""The pytest suite: the same real services, with test databases.

`default`, `replica`, `readonly`, `loader` and `monitor` mirror `owner`:
Django creates one test database (as shop_owner, who may CREATEDB) and the
others take its name, so each keeps its own role and server. The replica and
readonly aliases therefore read the real standby's streamed copy of test_shop.

`default`, `replica` and `readonly` are pooled and checked exactly as in
production, so the suite runs on pooled connections (tests/shop/test_pool.py).
DATABASE_VIA_PGBOUNCER=1 runs it through pgbouncer (`make test-pgbouncer`).
"""

from urllib.parse import urlparse

from .base import *  # noqa: F403
from .base import connection_budget, databases, env, env_bool, pool_size, redis_cache

# Large enough for the widest race in the suite (24 threads, each holding a
# connection, plus the test's own and the live server's): a thread that
# waited for a connection while the others wait for it at a barrier would
# hang the test. One process: pytest.
DATABASE_THREADS = 32
DATABASE_PROCESSES = 1
DATABASE_POOL = pool_size(DATABASE_THREADS)
DATABASES = databases(DATABASE_POOL)
connection_budget(DATABASES, threads=DATABASE_THREADS, processes=DATABASE_PROCESSES)
DATABASES["default"]["TEST"] = {"MIRROR": "owner"}
DATABASES["replica"]["TEST"] = {"MIRROR": "owner"}
DATABASES["readonly"]["TEST"] = {"MIRROR": "owner"}
DATABASES["loader"]["TEST"] = {"MIRROR": "owner"}
DATABASES["monitor"]["TEST"] = {"MIRROR": "owner"}
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
# Off in the suite unless asked for: tests write rows with factories and read
# them at once through the API, and an anonymous catalog read would then
# race the replica's replay. tests/shop/test_replica_router*.py turn it on.
REPLICA_READS = env_bool("REPLICA_READS", False)
CELERY_TASK_ALWAYS_EAGER = True
DEBUG = False

# One test database per concurrent run (several checkouts on one server).
DATABASES["owner"]["TEST"] = {
    "NAME": env("SHOP_TEST_DB_NAME", "test_shop"),
    # Created first: the other aliases mirror it.
    "DEPENDENCIES": [],
}

# Integration tests start a real worker; a database of its own on the Redis
# server keeps their messages apart from a development worker's.
CELERY_BROKER_URL = urlparse(REDIS_URL)._replace(path="/15").geturl()  # noqa: F405

# The auth endpoints are called many times per run, all from 127.0.0.1; the
# throttle tests set their own small rates (tests/accounts/test_throttling.py).
AUTH_RATE_REGISTER = AUTH_RATE_TOKEN = AUTH_RATE_TOKEN_EMAIL = "10000/min"

# The suite's own Redis database for the cache: rate-limit counters and
# cached pages written by tests must never reach a development server's
# (they share the server and, without this, the keys).
if REDIS_ENABLED:  # noqa: F405
    suite_cache = urlparse(REDIS_URL)._replace(path="/14").geturl()  # noqa: F405
    CACHES = {"default": redis_cache(suite_cache)}
