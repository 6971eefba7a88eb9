"""Database helpers for tests that need more than one connection."""

import time

from django.db import connections

# Transactional tests list `owner` too: Django never flushes a mirror, so
# without it rows written through `default` would leak into the next test.
ALL_DATABASES = ["default", "owner", "replica"]


def wait_for_replica(timeout=10.0):
    """Block until the replica has replayed everything the primary has written."""
    with connections["default"].cursor() as cursor:
        cursor.execute("SELECT pg_current_wal_lsn()")
        (target,) = cursor.fetchone()
    deadline = time.monotonic() + timeout
    with connections["replica"].cursor() as cursor:
        while True:
            cursor.execute(
                "SELECT pg_wal_lsn_diff(%s::pg_lsn, pg_last_wal_replay_lsn()) <= 0",
                [target],
            )
            if cursor.fetchone()[0]:
                return
            if time.monotonic() > deadline:
                raise TimeoutError(f"replica did not replay {target} within {timeout}s")
            time.sleep(0.02)
