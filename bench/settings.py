"""Settings for the benchmarks: the local services and a scratch database.

A benchmark creates its own database (SHOP_BENCH_DB_NAME, default
shop_bench) the way the test suite creates test_shop: as shop_owner, with
every migration, the PL/pgSQL included. It fills it with throw-away rows
and drops it at the end, so the dev database `shop` is never touched.
No connection pool: every client thread opens its own connection.
"""

from shop.settings.base import *  # noqa: F403
from shop.settings.base import env

DATABASES["owner"]["TEST"] = {  # noqa: F405
    "NAME": env("SHOP_BENCH_DB_NAME", "shop_bench"),
    "DEPENDENCIES": [],
}
DATABASES["default"]["TEST"] = {"MIRROR": "owner"}  # noqa: F405
DATABASES["replica"]["TEST"] = {"MIRROR": "owner"}  # noqa: F405
DATABASES["readonly"]["TEST"] = {"MIRROR": "owner"}  # noqa: F405
DATABASES["loader"]["TEST"] = {"MIRROR": "owner"}  # noqa: F405
DEBUG = False
# The fake gateway answers at once: the benchmark measures the database work.
PAYMENT_GATEWAY_DELAY = 0
PAYMENT_GATEWAY_HOOK = None
LOGGING["root"]["level"] = "WARNING"  # noqa: F405
