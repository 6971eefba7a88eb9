"""Reading pgaudit's entries back from the local primary's log.

scripts/services.sh preloads pgaudit when its package is installed and
starts the primary with `pg_ctl -l var/log/primary.log`, so on the local
cluster every AUDIT entry lands in that file. Elsewhere (docker compose, a
managed server) the log is not ours to read: `server_log()` says None.
"""

import re
from pathlib import Path

from django.conf import settings
from django.db import connections

# An entry starts with its timestamp; a statement with newlines spans lines.
ENTRY_START = re.compile(r"^(?=\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2})", re.MULTILINE)


def loaded(using: str = "owner") -> bool:
    """Is pgaudit installed in this database (possible only if preloaded)?"""
    with connections[using].cursor() as cursor:
        cursor.execute("SELECT 1 FROM pg_extension WHERE extname = 'pgaudit'")
        return cursor.fetchone() is not None


def server_log() -> Path | None:
    path = Path(settings.BASE_DIR) / "var" / "log" / "primary.log"
    return path if path.is_file() else None


def log_end(path: Path) -> int:
    """Where the log ends now: read from here to see only what comes next."""
    return path.stat().st_size


def log_text(path: Path, since: int) -> str:
    """Everything the server logged after offset `since`."""
    with path.open(encoding="utf-8", errors="replace") as log:
        log.seek(since)
        return log.read()


def audit_entries(path: Path, since: int, marker: str) -> list[str]:
    """The AUDIT entries logged after offset `since` that mention `marker`."""
    entries = ENTRY_START.split(log_text(path, since))
    return [e for e in entries if "AUDIT:" in e and marker in e]
