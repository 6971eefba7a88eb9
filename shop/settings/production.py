"""Production: everything from the environment, nothing insecure by default."""

from shop.crypto import parse_field_keys

from .base import *  # noqa: F403
from .base import (
    MIDDLEWARE,
    STATIC_ROOT,
    connection_budget,
    databases,
    env,
    env_bool,
    pool_size,
)

SECRET_KEY = env("DJANGO_SECRET_KEY")
if not SECRET_KEY:
    raise RuntimeError("DJANGO_SECRET_KEY must be set in production.")
DEBUG = False
# Per process: gunicorn's workers each hold a pool per alias, sized from
# their threads (base.py: the formula above DATABASE_THREADS). The defaults,
# 4 processes of 16 threads, fit servers of 200 connections with the
# reserve; set both to what the deployment runs, Celery's processes
# included, and start refuses a combination the servers cannot take.
DATABASE_THREADS = int(env("DATABASE_THREADS", "16"))
DATABASE_PROCESSES = int(env("DATABASE_PROCESSES", "4"))
DATABASE_POOL = pool_size(DATABASE_THREADS, min_size=2)
DATABASES = databases(DATABASE_POOL)
connection_budget(DATABASES, threads=DATABASE_THREADS, processes=DATABASE_PROCESSES)

# --- HTTPS -------------------------------------------------------------------
# Every request over HTTPS: a plain-http one is redirected (301) to its
# https:// address. The probes are not: a load balancer's or an
# orchestrator's health check speaks plain HTTP to the process inside the
# network and reads a redirect as a failure. Patterns match the path
# without its leading slash.
SECURE_SSL_REDIRECT = env_bool("DJANGO_SECURE_SSL_REDIRECT", True)
SECURE_REDIRECT_EXEMPT = [r"^livez$", r"^readyz$", r"^healthz$"]
# Browsers that saw the header once use only https for the host for this
# long (a year, Django's deployment check's recommendation); 0 sends none.
# Django sends it on https responses only.
SECURE_HSTS_SECONDS = int(env("DJANGO_SECURE_HSTS_SECONDS", str(365 * 86400)))
# Off unless asked for: both reach beyond this app. includeSubDomains binds
# every subdomain of the host, which other teams may still serve over plain
# HTTP; preload asks browsers to ship the rule built in, which takes months
# to undo. Turn them on when the whole domain is known to be https-only.
SECURE_HSTS_INCLUDE_SUBDOMAINS = env_bool(
    "DJANGO_SECURE_HSTS_INCLUDE_SUBDOMAINS", False
)
SECURE_HSTS_PRELOAD = env_bool("DJANGO_SECURE_HSTS_PRELOAD", False)
if SECURE_HSTS_PRELOAD and not SECURE_HSTS_INCLUDE_SUBDOMAINS:
    raise RuntimeError(
        "DJANGO_SECURE_HSTS_PRELOAD=1 needs DJANGO_SECURE_HSTS_INCLUDE_SUBDOMAINS=1: "
        "the browsers' preload list refuses a header without includeSubDomains."
    )
# Whether a request came over https, for the redirect above, the secure
# cookies and request.is_secure(): behind a proxy that ends TLS, the
# connection the app sees is plain HTTP and only the proxy's
# X-Forwarded-Proto tells. Trusted only when the deployment says such a
# proxy is in front, and that it sets the header on every request,
# overwriting the client's: otherwise any client could claim https.
if env_bool("DJANGO_TRUST_X_FORWARDED_PROTO", False):
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
else:
    SECURE_PROXY_SSL_HEADER = None
# Session and CSRF cookies only over https. DJANGO_SECURE_COOKIES=0 is for a
# set-up served over plain http on purpose (docker-compose.yml), where the
# browser would otherwise never send them back and no login would hold.
SESSION_COOKIE_SECURE = env_bool("DJANGO_SECURE_COOKIES", True)
CSRF_COOKIE_SECURE = SESSION_COOKIE_SECURE

# --- Static files --------------------------------------------------------------
# gunicorn serves no static files, and Django serves them only with DEBUG
# on: WhiteNoise serves what `collectstatic` gathered (the Dockerfile runs it
# at build), from each process, right after the security middleware so the
# redirect and HSTS apply to them too. The manifest storage names files by
# their content's hash, so they may be cached for good.
_after = MIDDLEWARE.index("django.middleware.security.SecurityMiddleware") + 1
MIDDLEWARE = [
    *MIDDLEWARE[:_after],
    "whitenoise.middleware.WhiteNoiseMiddleware",
    *MIDDLEWARE[_after:],
]
STATIC_ROOT = env("DJANGO_STATIC_ROOT", str(STATIC_ROOT))
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"
    },
}
# Without Redis every process would count rate limits on its own (an
# attacker's budget times the processes) and Celery would run tasks inside
# requests: production refuses to start with REDIS_URL empty. A Redis that
# is configured but does not answer at start is not fatal. Nothing is
# decided from it any more (the cache stays Redis and each call fails fast,
# see base.py), so refusing would protect nothing, and it would turn a Redis
# restart during a deploy, or Redis starting after the web processes, into
# a crash loop that takes the catalog, carts and checkout down with it.
# /healthz reports it instead.
if not REDIS_ENABLED:  # noqa: F405
    raise RuntimeError(
        "Redis is required in production: set REDIS_URL to its server "
        "(redis://[user:password@]host:port/db, or rediss:// for TLS)."
    )

# Encrypted columns (shop/crypto.py): the dev default key is public.
FIELD_ENCRYPTION_KEYS = env("FIELD_ENCRYPTION_KEYS")
if not FIELD_ENCRYPTION_KEYS:
    raise RuntimeError(
        "FIELD_ENCRYPTION_KEYS must be set in production: comma-separated "
        "id:secret pairs, the current key first (see shop/crypto.py)."
    )
parse_field_keys(FIELD_ENCRYPTION_KEYS)  # a malformed list fails at start, not per row
