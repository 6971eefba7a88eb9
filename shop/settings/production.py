"""Production: everything from the environment, nothing insecure by default."""

from shop.crypto import parse_field_keys

from .base import *  # noqa: F403
from .base import env

SECRET_KEY = env("DJANGO_SECRET_KEY")
if not SECRET_KEY:
    raise RuntimeError("DJANGO_SECRET_KEY must be set in production.")
DEBUG = False
DATABASES["default"]["OPTIONS"]["pool"] = {"min_size": 2, "max_size": 20, "timeout": 10}  # noqa: F405
SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
SESSION_COOKIE_SECURE = True
CSRF_COOKIE_SECURE = True
# base.py probed Redis on import and, without REDIS_REQUIRED in the
# environment, fell back to a local-memory cache: every process would keep
# its own rate-limit counters (an attacker's budget times the processes) and
# Celery would run tasks inside requests. In production, refuse to start.
REDIS_REQUIRED = True
if not REDIS_AVAILABLE:  # noqa: F405
    raise RuntimeError(
        f"Redis is required in production but does not answer at {REDIS_URL}. "  # noqa: F405
        "Start it, or point REDIS_URL at the running server."
    )

# Encrypted columns (shop/crypto.py): the dev default key is public.
FIELD_ENCRYPTION_KEYS = env("FIELD_ENCRYPTION_KEYS")
if not FIELD_ENCRYPTION_KEYS:
    raise RuntimeError(
        "FIELD_ENCRYPTION_KEYS must be set in production: comma-separated "
        "id:secret pairs, the current key first (see shop/crypto.py)."
    )
parse_field_keys(FIELD_ENCRYPTION_KEYS)  # a malformed list fails at start, not per row
