"""Lab `pgbadger` (24): what the primary logs, read back as pgBadger reads it.

The settings come from scripts/pg/logging.conf. A statement slower than
log_min_duration_statement is logged with its duration and its text, and
one that fails with its text; neither carries the key it was sent with,
because the key is a bound parameter (shop/crypto.py:execute_with_keys)
and log_parameter_max_length(_on_error) is 0. pgBadger, where it is
installed, then reads those few lines with the server's own prefix.

The lab writes no rows. What it leaves is what it demonstrates: a few
lines in var/log/primary.log, and pgBadger's report in a temporary
directory that is removed at the end.
"""

import tempfile
import uuid
from pathlib import Path

from shop import pgaudit, pglog
from shop.crypto import execute_with_keys
from shop.lab import Narrator, lab

SETTINGS_SQL = """
SELECT name, setting, unit
FROM pg_settings
WHERE name IN ('log_line_prefix', 'log_min_duration_statement',
               'log_parameter_max_length', 'log_parameter_max_length_on_error',
               'log_lock_waits', 'deadlock_timeout', 'log_checkpoints',
               'log_autovacuum_min_duration', 'log_temp_files', 'lc_messages')
ORDER BY name
"""
# A comment names the statement in the log; %(key)s stands for a secret.
SLOW_SQL = "/* {tag} */ SELECT pg_sleep(%(pause)s), length(%(key)s::text) AS n"
FAILING_SQL = "/* {tag} */ SELECT 1 / (length(%(key)s::text) - length(%(key)s::text))"


@lab(
    "pgbadger",
    chapter="24",
    summary="slow and failed statements are logged with their text, never "
    "with their bound parameters; pgBadger reads the lines",
)
def pgbadger(n: Narrator) -> None:
    n.step("The logging settings in effect (scripts/pg/logging.conf)")
    rows = n.sql(SETTINGS_SQL)
    values = {name: setting for name, setting, _ in rows}
    n.expect(
        values["log_parameter_max_length"] == "0"
        and values["log_parameter_max_length_on_error"] == "0",
        "bound parameters are never logged, on success or on error",
    )
    n.expect(
        values["log_line_prefix"].startswith("%m "),
        "each line starts with its time (%m), which pgBadger and "
        "shop/pgaudit.py look for",
    )
    threshold = int(values["log_min_duration_statement"])
    path = pgaudit.server_log()
    if path is None or threshold < 0:
        n.say(
            "    The log is not var/log/primary.log here, or no statement is\n"
            "    logged for its duration: run scripts/services.sh up, which\n"
            "    includes scripts/pg/logging.conf."
        )
        return

    tag = f"lab-pgbadger-{uuid.uuid4().hex[:12]}"
    key = f"lab-secret-{uuid.uuid4().hex}"
    ((pid,),) = n.sql(
        "SELECT pg_backend_pid()", label="this session's process, [%p] in the log"
    )
    since = pgaudit.log_end(path)

    n.step(f"As shop_app: a statement slower than {threshold} ms, a key bound to it")
    pause = (threshold + 50) / 1000
    n.say("    -- shop/crypto.py:execute_with_keys: bound server-side, as $1, $2")
    n.show_sql(SLOW_SQL.format(tag=tag), {"pause": pause, "key": "<the key>"})
    execute_with_keys(SLOW_SQL.format(tag=tag), {"pause": pause, "key": key})
    n.say("    -> 1 row")

    n.step("And one that fails, with the same key")
    n.show_sql(FAILING_SQL.format(tag=tag), {"key": "<the key>"})
    n.expect_error(
        lambda: execute_with_keys(FAILING_SQL.format(tag=tag), {"key": key}),
        sqlstate="22012",
        claim="the statement fails: division by zero",
    )

    n.step("What var/log/primary.log says about them")
    logged = pgaudit.log_text(path, since)
    # Other sessions log meanwhile too: only this session's lines count.
    mine = [
        entry
        for entry in pglog.entries(logged)
        if (fields := pglog.head(entry)) and fields["pid"] == str(pid)
    ]
    for entry in mine:
        n.say("    " + entry.strip())
    n.expect(
        [pglog.head(entry)["level"] for entry in mine] == ["LOG", "ERROR", "STATEMENT"],
        "three entries: the slow statement's duration, the error, the failed statement",
    )
    n.expect(
        "duration: " in mine[0] and "SELECT pg_sleep($1), length($2::text)" in mine[0],
        "the slow statement is logged with its duration and its text, "
        "placeholders in place of the values",
    )
    n.expect(
        key not in logged,
        "the key appears nowhere in the log: no 'parameters:' detail, no "
        "'portal with parameters' context",
    )
    _pgbadger(n, "".join(mine), tag)


def _pgbadger(n: Narrator, logged: str, tag: str) -> None:
    n.step("pgBadger reads these lines with the server's own prefix")
    if pglog.pgbadger_path() is None:
        n.say("    pgbadger is not installed here: apt-get install pgbadger.")
        return
    prefix = pglog.line_prefix()
    with tempfile.TemporaryDirectory(prefix="lab-pgbadger-") as scratch:
        log = Path(scratch) / "postgresql.log"
        log.write_text(logged, encoding="utf-8")
        n.say(f"    $ pgbadger --prefix '{prefix}' --format stderr -x text ...")
        report = pglog.pgbadger(
            log, Path(scratch) / "report.txt", prefix=prefix, text=True
        ).read_text(encoding="utf-8")
    slowest = report.split("- Slowest queries -", 1)[-1]
    counts = [
        line
        for line in report.splitlines()
        if line.startswith(("Number of queries:", "Number of events:"))
    ]
    for line in counts:
        n.say(f"    {line}")
    n.expect(
        counts == ["Number of queries: 1", "Number of events: 1"],
        "it parsed this session's lines: one query with its duration, one error",
    )
    n.expect(
        f"/* {tag} */ SELECT pg_sleep(" in slowest,
        "pgBadger lists the slow statement among the slowest queries",
    )
