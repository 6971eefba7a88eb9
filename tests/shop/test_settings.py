"""Settings read from the environment, each in a fresh interpreter.

Settings are computed once, at import; a new process is the only honest way
to see what a variable does to them.
"""

import json
import os
import re
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


# --- production's HTTPS and static files --------------------------------------

HTTPS_DUMP = """
import json, re
from shop.settings import production as s
print(json.dumps({
    "SECURE_SSL_REDIRECT": s.SECURE_SSL_REDIRECT,
    "SECURE_REDIRECT_EXEMPT": s.SECURE_REDIRECT_EXEMPT,
    "SECURE_HSTS_SECONDS": s.SECURE_HSTS_SECONDS,
    "SECURE_HSTS_INCLUDE_SUBDOMAINS": s.SECURE_HSTS_INCLUDE_SUBDOMAINS,
    "SECURE_HSTS_PRELOAD": s.SECURE_HSTS_PRELOAD,
    "SECURE_PROXY_SSL_HEADER": s.SECURE_PROXY_SSL_HEADER,
    "SESSION_COOKIE_SECURE": s.SESSION_COOKIE_SECURE,
    "CSRF_COOKIE_SECURE": s.CSRF_COOKIE_SECURE,
    "MIDDLEWARE": s.MIDDLEWARE,
    "STATIC_ROOT": str(s.STATIC_ROOT),
    "STATICFILES": s.STORAGES["staticfiles"]["BACKEND"],
}))
"""
HTTPS_VARIABLES = {
    "DJANGO_SECURE_SSL_REDIRECT",
    "DJANGO_SECURE_HSTS_SECONDS",
    "DJANGO_SECURE_HSTS_INCLUDE_SUBDOMAINS",
    "DJANGO_SECURE_HSTS_PRELOAD",
    "DJANGO_TRUST_X_FORWARDED_PROTO",
    "DJANGO_SECURE_COOKIES",
    "DJANGO_STATIC_ROOT",
}


def production_https(**env) -> dict:
    """Production's HTTPS settings, imported in a fresh interpreter."""
    environment = {
        k: v
        for k, v in os.environ.items()
        if k not in {"DJANGO_SETTINGS_MODULE", *HTTPS_VARIABLES}
    }
    done = subprocess.run(
        [sys.executable, "-c", HTTPS_DUMP],
        cwd=ROOT,
        env={**environment, **SECRETS, **env},
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    return json.loads(done.stdout.splitlines()[-1])


def exempt(found, path):
    """Whether SecurityMiddleware leaves `path` alone (it strips the leading /)."""
    return any(re.search(p, path.lstrip("/")) for p in found["SECURE_REDIRECT_EXEMPT"])


def test_production_redirects_to_https_and_sends_hsts_for_a_year_by_default():
    found = production_https()

    assert found["SECURE_SSL_REDIRECT"] is True
    assert found["SECURE_HSTS_SECONDS"] == 365 * 86400
    # Both bind more than this app: off unless the deployment asks.
    assert found["SECURE_HSTS_INCLUDE_SUBDOMAINS"] is False
    assert found["SECURE_HSTS_PRELOAD"] is False
    assert found["SESSION_COOKIE_SECURE"] is True
    assert found["CSRF_COOKIE_SECURE"] is True


def test_the_probes_and_only_they_are_exempt_from_the_redirect():
    found = production_https()

    for probe in ("/livez", "/readyz", "/healthz"):
        assert exempt(found, probe), probe
    for path in ("/api/v1/ping/", "/admin/", "/api/v1/products/", "/livez/x", "/"):
        assert not exempt(found, path), path


def test_the_forwarded_proto_header_is_trusted_only_when_the_deployment_says_so():
    assert production_https()["SECURE_PROXY_SSL_HEADER"] is None
    assert (
        production_https(DJANGO_TRUST_X_FORWARDED_PROTO="0")["SECURE_PROXY_SSL_HEADER"]
        is None
    )
    trusted = production_https(DJANGO_TRUST_X_FORWARDED_PROTO="1")
    assert trusted["SECURE_PROXY_SSL_HEADER"] == ["HTTP_X_FORWARDED_PROTO", "https"]


def test_the_https_settings_follow_their_variables():
    found = production_https(
        DJANGO_SECURE_SSL_REDIRECT="0",
        DJANGO_SECURE_HSTS_SECONDS="600",
        DJANGO_SECURE_HSTS_INCLUDE_SUBDOMAINS="1",
        DJANGO_SECURE_HSTS_PRELOAD="1",
        DJANGO_SECURE_COOKIES="0",
    )

    assert found["SECURE_SSL_REDIRECT"] is False
    assert found["SECURE_HSTS_SECONDS"] == 600
    assert found["SECURE_HSTS_INCLUDE_SUBDOMAINS"] is True
    assert found["SECURE_HSTS_PRELOAD"] is True
    assert found["SESSION_COOKIE_SECURE"] is False
    assert found["CSRF_COOKIE_SECURE"] is False


def test_production_refuses_hsts_preload_without_subdomains():
    result = production(DJANGO_SECURE_HSTS_PRELOAD="1")
    assert result.returncode != 0
    assert "DJANGO_SECURE_HSTS_INCLUDE_SUBDOMAINS=1" in result.stderr


def test_production_serves_static_files_with_whitenoise_after_the_security_middleware():
    found = production_https(DJANGO_STATIC_ROOT="/srv/static")

    middleware = found["MIDDLEWARE"]
    # Right after it: the redirect and HSTS apply to static files too, and
    # nothing later (sessions, the database) runs for them.
    at = middleware.index("django.middleware.security.SecurityMiddleware")
    assert middleware[at + 1] == "whitenoise.middleware.WhiteNoiseMiddleware"
    assert middleware.count("whitenoise.middleware.WhiteNoiseMiddleware") == 1
    assert found["STATICFILES"].startswith("whitenoise.storage.")
    assert found["STATIC_ROOT"] == "/srv/static"


def deploy_check(**env) -> set[str]:
    """The ids of what `manage.py check --deploy` reports on production."""
    environment = {
        k: v
        for k, v in os.environ.items()
        if k not in {"DJANGO_SETTINGS_MODULE", *HTTPS_VARIABLES}
    }
    done = subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy"],
        cwd=ROOT,
        env={
            **environment,
            **SECRETS,
            "DJANGO_SETTINGS_MODULE": "shop.settings.production",
            # Long and random enough for security.W009.
            "DJANGO_SECRET_KEY": "x7Gq2-" * 10,
            **env,
        },
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return set(re.findall(r"\((\w+\.\w+)\)", done.stderr + done.stdout))


def test_djangos_deployment_check_finds_only_what_is_off_on_purpose():
    # The two HSTS options that reach beyond the app (see production.py).
    assert deploy_check() == {"security.W005", "security.W021"}
    assert (
        deploy_check(
            DJANGO_SECURE_HSTS_INCLUDE_SUBDOMAINS="1", DJANGO_SECURE_HSTS_PRELOAD="1"
        )
        == set()
    )
