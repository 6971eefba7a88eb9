"""Lab `wal` (24): every change is written to the WAL first, the WAL comes in
16 MB segments, and each finished segment is archived.

It writes rows into a throw-away table, measures the WAL they cost with
the server's own positions (LSNs), finishes the segment, and waits until
the archiver has shipped it: into pgBackRest's repository when the project
archives with pgBackRest (scripts/pgbackrest.sh), else into the copy
directory. Finishing a segment and reading the archiver's settings need
the cluster superuser, reached over the cluster's Unix socket as the tests
reach it; so the lab needs the project's own servers (scripts/services.sh).
"""

from __future__ import annotations

from contextlib import contextmanager
from pathlib import Path

from django.conf import settings
from django.db import connections

from shop.lab import LabFailed, Narrator, create_throwaway, drop_throwaway, lab
from shop.local_clusters import socket_dir
from shop.local_clusters import superuser as cluster_superuser
from shop.wal_archive import archived_through, switch_wal

TABLE = "lab_wal"
ROWS = 20_000
ARCHIVER_SQL = (
    "SELECT archived_count, last_archived_wal, failed_count FROM pg_stat_archiver"
)


@contextmanager
def superuser():
    """The cluster superuser on the lab's database, over the cluster's socket."""
    params = connections["owner"].get_connection_params()
    sock = socket_dir() / f".s.PGSQL.{params['port']}"
    if not sock.exists():
        raise LabFailed(
            f"no cluster socket at {sock}: this lab needs the project's own "
            "servers (scripts/services.sh up) on this machine"
        )
    with cluster_superuser(params["port"], params["dbname"]) as connection:
        yield connection


def archived_copy(segment: str) -> Path | None:
    """Where the archive keeps `segment`: pgBackRest's repository or the copies."""
    var = Path(settings.BASE_DIR) / "var"
    for found in (var / "pgbackrest" / "repo" / "archive").glob(f"*/*/*/{segment}-*"):
        return found
    copy = var / "pg" / "wal-archive" / segment
    return copy if copy.exists() else None


@lab(
    "wal",
    chapter="24",
    summary="WAL segments fill with every change and are archived when finished",
)
def wal(n: Narrator) -> None:
    with superuser() as su:
        n.step("How this cluster writes and archives its WAL")
        n.show_sql(
            "SELECT name, setting FROM pg_settings WHERE name IN "
            "('wal_level', 'wal_segment_size', 'archive_mode', 'archive_command')",
            label="as the cluster superuser (archive_command is not for every role)",
        )
        rows = su.execute(
            "SELECT name, setting FROM pg_settings WHERE name IN "
            "('wal_level', 'wal_segment_size', 'archive_mode', 'archive_command') "
            "ORDER BY name"
        ).fetchall()
        n.table(["name", "setting"], rows)
        conf = dict(rows)
        n.expect(conf["archive_mode"] == "on", "the primary archives its WAL")

        n.step("Writing rows costs WAL, in the segment being filled")
        create_throwaway(n, TABLE, "(id int PRIMARY KEY, note text NOT NULL)")
        try:
            before = su.execute(
                "SELECT pg_current_wal_lsn(), pg_walfile_name(pg_current_wal_lsn())"
            ).fetchone()
            n.say(f"    before: LSN {before[0]}, segment {before[1]}")
            n.sql(
                f"INSERT INTO {TABLE} SELECT g, repeat('x', 40) "
                "FROM generate_series(1, %s) g",
                [ROWS],
                using="owner",
                label=f"{ROWS} rows, committed (the throw-away table is the lab's)",
            )
            after = su.execute(
                "SELECT pg_current_wal_lsn(), pg_walfile_name(pg_current_wal_lsn()),"
                " pg_wal_lsn_diff(pg_current_wal_lsn(), %s)",
                [before[0]],
            ).fetchone()
            n.say(f"    after:  LSN {after[0]}, segment {after[1]}")
            written = int(after[2])
            n.say(f"    -> {written:,} bytes of WAL, {written / ROWS:.0f} per row")
            n.expect(
                written > ROWS * 40,
                "the WAL holds at least the rows' data: each change is logged "
                "before the table's page is written",
            )
        finally:
            drop_throwaway(n, TABLE)

        n.step("A finished segment goes to the archive")
        n.show_sql("SELECT pg_switch_wal()", label="finish the segment now")
        segment = switch_wal(su)
        n.say(f"    -> segment {segment} is finished; the archiver takes it")
        if not archived_through(su, segment):
            raise LabFailed(f"segment {segment} was not archived within 30 s")
        n.show_sql(ARCHIVER_SQL)
        row = su.execute(ARCHIVER_SQL).fetchone()
        n.table(["archived_count", "last_archived_wal", "failed_count"], [row])
        n.expect(row[1][:24] >= segment, f"pg_stat_archiver reports {segment} archived")
        copy = archived_copy(segment)
        n.expect(copy is not None, "the segment is in the archive")
        n.say(
            f"    -> {copy.relative_to(settings.BASE_DIR)}: "
            f"{copy.stat().st_size:,} bytes for a segment of "
            f"{int(conf['wal_segment_size']):,}"
            " (pgBackRest compresses; a mostly empty segment compresses well)"
        )
