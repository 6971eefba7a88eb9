"""Settings read from the environment, each in a fresh interpreter.

Settings are computed once, at import; a new process is the only honest way
to see what a variable does to them.
"""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
DUMP = (
    "import json; from shop.settings import base; "
    "print(json.dumps({alias: [c['NAME'], c['USER'], c['HOST'], c['PORT']] "
    "for alias, c in base.DATABASES.items()}))"
)


def databases(**env):
    environment = {k: v for k, v in os.environ.items() if k != "SHOP_DATABASE"}
    done = subprocess.run(
        [sys.executable, "-c", DUMP],
        cwd=ROOT,
        env={**environment, **env},
        capture_output=True,
        text=True,
        check=True,
    )
    return json.loads(done.stdout.splitlines()[-1])


def test_shop_database_renames_the_database_of_every_alias_and_nothing_else():
    default = databases()
    scratch = databases(SHOP_DATABASE="shop_security")

    assert set(scratch) == set(default)
    for alias, (name, user, host, port) in scratch.items():
        assert name == "shop_security", alias
        assert [user, host, port] == default[alias][1:], alias


def test_without_shop_database_each_alias_keeps_the_name_in_its_url():
    named = databases(DATABASE_URL="postgres://u:p@127.0.0.1:1/elsewhere")
    assert named["default"][0] == "elsewhere"
    assert named["owner"][0] == "shop"


def production(**env) -> subprocess.CompletedProcess:
    """Import the production settings in a fresh interpreter with `env` added."""
    environment = {
        k: v for k, v in os.environ.items() if k not in {"DJANGO_SETTINGS_MODULE"}
    }
    environment |= {
        "DJANGO_SECRET_KEY": "only-for-this-test",
        "FIELD_ENCRYPTION_KEYS": "1:only-for-this-test",
        **env,
    }
    return subprocess.run(
        [sys.executable, "-c", "import shop.settings.production"],
        cwd=ROOT,
        env=environment,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_production_refuses_to_start_without_redis():
    result = production(REDIS_URL="")
    assert result.returncode != 0
    assert "Redis is required in production" in result.stderr


def test_production_starts_with_redis_and_its_secrets():
    result = production()
    assert result.returncode == 0, result.stderr


def test_production_starts_while_its_redis_does_not_answer():
    """Whether Redis answers is a run-time matter (base.py, production.py)."""
    # Port 9 (discard) on loopback: nothing answers there.
    result = production(REDIS_URL="redis://127.0.0.1:9/0")
    assert result.returncode == 0, result.stderr


SECRETS = {
    "DJANGO_SECRET_KEY": "only-for-this-test",
    "FIELD_ENCRYPTION_KEYS": "1:only-for-this-test",
}
SETTINGS_DUMP = """
import importlib, json, sys
s = importlib.import_module(sys.argv[1])
print(json.dumps({
    "DATABASES": s.DATABASES,
    "CACHES": s.CACHES,
    "CELERY_TASK_ALWAYS_EAGER": s.CELERY_TASK_ALWAYS_EAGER,
    "CELERY_BROKER_URL": s.CELERY_BROKER_URL,
}, default=str))
"""


def settings_of(module, **env) -> tuple[dict, str]:
    """(some settings of `module`, its stderr), imported in a fresh interpreter."""
    environment = {
        k: v
        for k, v in os.environ.items()
        if k not in {"DJANGO_SETTINGS_MODULE", "SHOP_DATABASE"}
    }
    done = subprocess.run(
        [sys.executable, "-c", SETTINGS_DUMP, module],
        cwd=ROOT,
        env={**environment, **SECRETS, **env},
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    return json.loads(done.stdout.splitlines()[-1]), done.stderr


ENVIRONMENTS = ["shop.settings.local", "shop.settings.production", "shop.settings.test"]


@pytest.mark.parametrize("module", ENVIRONMENTS)
def test_every_pooled_alias_checks_its_connections(module):
    databases = settings_of(module)[0]["DATABASES"]

    pooled = {a for a, c in databases.items() if c["OPTIONS"].get("pool")}
    assert "default" in pooled
    for alias in pooled:
        config = databases[alias]
        # Django's pool gets check=ConnectionPool.check_connection from this
        # flag, and shop.db_backend makes a failed check sweep the pool.
        assert config["CONN_HEALTH_CHECKS"] is True, alias
        assert config["ENGINE"] == "shop.db_backend", alias
        assert config["CONN_MAX_AGE"] == 0, alias  # the pool replaces it


def test_each_environment_sizes_its_own_pool():
    sizes = {
        module: settings_of(module)[0]["DATABASES"]["default"]["OPTIONS"]["pool"]
        for module in ENVIRONMENTS
    }
    assert sizes["shop.settings.production"]["max_size"] == 20
    # The widest race in the suite holds 24 connections at once.
    assert sizes["shop.settings.test"]["max_size"] > 24


@pytest.mark.parametrize("module", ["shop.settings.local", "shop.settings.production"])
def test_with_redis_configured_the_cache_is_redis_whether_it_answers_or_not(module):
    found, _ = settings_of(module, REDIS_URL="redis://127.0.0.1:9/0")

    cache = found["CACHES"]["default"]
    assert cache["BACKEND"] == "django_redis.cache.RedisCache"
    assert cache["LOCATION"] == "redis://127.0.0.1:9/0"
    # A dead Redis costs a request at most this much, not a TCP timeout.
    assert cache["OPTIONS"]["SOCKET_CONNECT_TIMEOUT"] <= 1
    assert cache["OPTIONS"]["SOCKET_TIMEOUT"] <= 1
    assert found["CELERY_TASK_ALWAYS_EAGER"] is False


def test_an_empty_redis_url_runs_without_redis_and_says_so_loudly():
    found, stderr = settings_of("shop.settings.local", REDIS_URL="")

    assert found["CACHES"]["default"]["BACKEND"].endswith("LocMemCache")
    assert found["CELERY_TASK_ALWAYS_EAGER"] is True
    assert found["CELERY_BROKER_URL"] == "memory://"
    assert "REDIS_URL is empty" in stderr
