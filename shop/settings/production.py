"""Production: everything from the environment, nothing insecure by default."""

from shop.crypto import parse_field_keys

from .base import *  # noqa: F403
from .base import connection_budget, databases, env, pool_size

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
SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
SESSION_COOKIE_SECURE = True
CSRF_COOKIE_SECURE = True
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
