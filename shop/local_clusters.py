"""Where scripts/services.sh keeps the local clusters' sockets.

The tests' superuser connections (tests/replicas.py), the labs and
benchmarks that need the superuser (the wal lab, make report) and the
shards' set-up (analytics/shards.py) reach the primary, the replica and the
shards over their unix sockets, as the postgres user; this is the one place
that knows where services.sh puts them (its SOCKDIR).

The clusters trust local connections over that socket: whoever may open it
on this machine is the superuser there. Over TCP every role needs its
password, and no app role may do what these connections do.
"""

import hashlib
from contextlib import contextmanager
from pathlib import Path

import psycopg
from django.conf import settings

# Unix socket paths are limited to about 100 bytes: a deeper checkout gets
# its sockets under /tmp, named after it, as services.sh does.
LONGEST_SOCKET_DIR = 80


def socket_dir() -> Path:
    root = Path(settings.BASE_DIR)
    path = root / "var" / "pg" / "run"
    if len(str(path)) > LONGEST_SOCKET_DIR:
        digest = hashlib.md5(str(root).encode()).hexdigest()[:8]
        path = Path(f"/tmp/shop-pg-{digest}")
    return path


@contextmanager
def superuser(port: int, dbname: str = "postgres"):
    """The cluster superuser on the server at `port`, over its Unix socket."""
    with psycopg.connect(
        host=str(socket_dir()),
        port=port,
        user="postgres",
        dbname=dbname,
        autocommit=True,
    ) as connection:
        yield connection
