"""Settings for the benchmarks: the local services and a scratch database.

A benchmark creates its own database (SHOP_BENCH_DB_NAME, default
shop_bench) the way the test suite creates test_shop: as shop_owner, with
every migration, the PL/pgSQL included. It fills it with throw-away rows
and drops it at the end, so the dev database `shop` is never touched.
No connection pool: every client thread opens its own connection and keeps
it. A pool would also keep its connections open past the end, and the
scratch database could not be dropped ("being accessed by other users").
"""

from shop.settings.base import *  # noqa: F403
from shop.settings.base import databases, env

DATABASES = databases(pool=None)
DATABASES["owner"]["TEST"] = {
    "NAME": env("SHOP_BENCH_DB_NAME", "shop_bench"),
    "DEPENDENCIES": [],
}
DATABASES["default"]["TEST"] = {"MIRROR": "owner"}
DATABASES["replica"]["TEST"] = {"MIRROR": "owner"}
DATABASES["readonly"]["TEST"] = {"MIRROR": "owner"}
DATABASES["loader"]["TEST"] = {"MIRROR": "owner"}
DEBUG = False
# The fake gateway answers at once: the benchmark measures the database work.
PAYMENT_GATEWAY_DELAY = 0
PAYMENT_GATEWAY_HOOK = None
LOGGING["root"]["level"] = "WARNING"  # noqa: F405
