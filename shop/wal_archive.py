"""Two moves on a primary's WAL archive, as the cluster superuser.

The wal lab shows a segment being archived, and tests/shop/test_backup.py
breaks the archiver and waits for it to catch up; both finish a segment and
wait for pg_stat_archiver to report it.
"""

import time


def switch_wal(connection) -> str:
    """Finish the current WAL segment; return its name.

    With nothing written since the last switch, pg_switch_wal() finishes no
    segment: a logical message (a WAL record that changes no table) first
    makes sure there is one.
    """
    connection.execute("SELECT pg_logical_emit_message(false, 'shop', 'switch')")
    (segment,) = connection.execute(
        "SELECT pg_walfile_name(pg_switch_wal())"
    ).fetchone()
    return segment


def archived_through(connection, segment: str, timeout: float = 30.0) -> bool:
    """Wait until the archiver has archived `segment` (or a later one).

    Segment names of one timeline sort in WAL order; last_archived_wal may
    name a backup's history file, whose first 24 characters are a segment.
    """
    deadline = time.monotonic() + timeout
    while True:
        (last,) = connection.execute(
            "SELECT coalesce(last_archived_wal, '') FROM pg_stat_archiver"
        ).fetchone()
        if last[:24] >= segment:
            return True
        if time.monotonic() > deadline:
            return False
        time.sleep(0.2)
