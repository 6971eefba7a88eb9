"""The primary's own log, as pgBadger reads it (chapter 24).

scripts/pg/logging.conf decides what the local primary logs and how each
line starts; scripts/services.sh sends it to var/log/primary.log
(shop/pgaudit.py:server_log finds it). This module splits that text into
entries, says which database an entry came from, and runs pgBadger on a
slice of it: `make report` (bench/pgbadger_report.py) and the `pgbadger`
lab both use it.
"""

import re
import shutil
import subprocess
from pathlib import Path

from django.db import connections

from shop.pgaudit import ENTRY_START

# What log_line_prefix ('%m [%p] user=%u,db=%d,app=%a,client=%h ') writes,
# then the message's level. Background processes (the checkpointer,
# autovacuum) have no user or database: both are empty.
ENTRY_HEAD = re.compile(
    r"^(?P<time>\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}\.\d{3} \S+) "
    r"\[(?P<pid>\d+)\] user=(?P<user>[^,]*),db=(?P<db>[^,]*),"
    r"app=(?P<app>.*?),client=(?P<client>\S*) (?P<level>[A-Z0-9]+):  "
)
# How long pgBadger may take on the slices given to it here: seconds of log.
PGBADGER_TIMEOUT = 120


class PgBadgerFailed(RuntimeError):
    """pgBadger could not read the log, or wrote no report."""


def line_prefix(using: str = "default") -> str:
    """The server's log_line_prefix, which pgBadger must be told to parse."""
    with connections[using].cursor() as cursor:
        cursor.execute("SELECT current_setting('log_line_prefix')")
        return cursor.fetchone()[0]


def entries(text: str) -> list[str]:
    """The log's entries: a line with a prefix and the lines that continue it."""
    return [entry for entry in ENTRY_START.split(text) if entry.strip()]


def head(entry: str) -> re.Match | None:
    """The entry's prefix fields (time, pid, user, db, ...), or None."""
    return ENTRY_HEAD.match(entry)


def of_database(chunks: list[str], database: str) -> list[str]:
    """The entries a run on `database` caused: its sessions' and its autovacuum's.

    The checkpointer's entries belong to every database and are kept; an
    autovacuum worker's name their table as database.schema.table.
    """
    kept = []
    for entry in chunks:
        fields = head(entry)
        if fields is None:
            continue
        if (
            fields["db"] == database
            or fields["db"] == ""
            and ("automatic " not in entry or f'"{database}.' in entry)
        ):
            kept.append(entry)
    return kept


def pgbadger_path() -> str | None:
    return shutil.which("pgbadger")


def pgbadger(log: Path, out: Path, *, prefix: str, text: bool = False) -> Path:
    """Run pgBadger on `log`, writing its report to `out` (HTML, or plain text)."""
    program = pgbadger_path()
    if program is None:
        raise PgBadgerFailed(
            "pgbadger is not installed: apt-get install pgbadger (Debian), "
            "or see https://pgbadger.darold.net"
        )
    # Comments kept: pgBadger joins a statement's lines into one before it
    # normalizes it, and a leading `-- comment` line (every .sql file of the
    # shop starts with one) would then swallow the rest of the statement.
    command = [
        program,
        "--prefix",
        prefix,
        "--format",
        "stderr",
        "--keep-comments",
        "--quiet",
    ]
    if text:
        command += ["--extension", "text"]
    command += ["--outfile", str(out), str(log)]
    done = subprocess.run(
        command,
        capture_output=True,
        text=True,
        timeout=PGBADGER_TIMEOUT,
        check=False,
    )
    if done.returncode != 0 or not out.is_file():
        raise PgBadgerFailed(
            f"pgbadger exited with {done.returncode} and wrote "
            f"{'no' if not out.is_file() else 'a'} report: {done.stderr[-2000:]}"
        )
    return out
