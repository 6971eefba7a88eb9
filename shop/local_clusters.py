"""Where scripts/services.sh keeps the local clusters' sockets.

The tests' superuser connections (tests/replicas.py) and the shards'
set-up (analytics/shards.py) reach the primary, the replica and the shards
over their unix sockets, as the postgres user; this is the one place that
knows where services.sh puts them (its SOCKDIR).
"""

import hashlib
from pathlib import Path

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
