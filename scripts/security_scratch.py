"""Create or drop what the attack pass (scripts/security.sh) runs against.

    python scripts/security_scratch.py create shop_security
    python scripts/security_scratch.py drop shop_security

The database is made and dropped as shop_owner, with the owner alias's
server, password and TLS options from the shop's settings, connected to the
`postgres` maintenance database as Django's test runner does: so it is owned
by the role that migrates it and inherits template1's extensions, like the
test database. Its name must say it is a scratch database, so that a typo can
never drop the developer's `shop`.

Both actions also empty the Redis database named by REDIS_URL (the script
gives the server one of its own), so that no cache entry, rate-limit counter
or queued task outlives the run; Redis database 0, the development server's,
is refused.
"""

import os
import re
import sys
from pathlib import Path
from urllib.parse import urlparse

import psycopg
from psycopg import sql

ROOT = Path(__file__).resolve().parent.parent
SCRATCH_NAME = re.compile(r"shop_[a-z0-9_]*(security|scratch)[a-z0-9_]*")


def settings():
    sys.path.insert(0, str(ROOT))
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "shop.settings.local")
    from django.conf import settings

    return settings


def owner_connection():
    owner = settings().DATABASES["owner"]
    try:
        return psycopg.connect(
            host=owner["HOST"],
            port=owner["PORT"],
            user=owner["USER"],
            password=owner["PASSWORD"],
            dbname="postgres",
            autocommit=True,  # CREATE and DROP DATABASE refuse to run in a transaction
            **owner["OPTIONS"],
        )
    except psycopg.OperationalError as exc:
        raise SystemExit(
            f"PostgreSQL does not answer as {owner['USER']} at "
            f"{owner['HOST']}:{owner['PORT']} ({str(exc).strip()}). "
            "Start the services with `make services` (or set OWNER_DATABASE_URL)."
        ) from None


def redis_flush() -> None:
    url = settings().REDIS_URL
    if not settings().REDIS_ENABLED:
        return  # the server falls back to a local-memory cache: nothing to empty
    if urlparse(url).path.strip("/") in ("", "0"):
        raise SystemExit(f"refusing to empty Redis database 0 ({url})")
    import redis

    redis.Redis.from_url(url).flushdb()


def main(argv: list[str]) -> int:
    if len(argv) != 2 or argv[0] not in {"create", "drop"}:
        print(__doc__, file=sys.stderr)
        return 2
    action, name = argv
    if not SCRATCH_NAME.fullmatch(name):
        print(
            f"refusing {name!r}: a scratch database is named like shop_security",
            file=sys.stderr,
        )
        return 2
    with owner_connection() as conn:
        # A run that was killed leaves its database behind: start from nothing.
        conn.execute(sql.SQL("DROP DATABASE IF EXISTS {}").format(sql.Identifier(name)))
        if action == "create":
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    redis_flush()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
