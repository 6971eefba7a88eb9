"""pgBackRest on the project's primary (scripts/pgbackrest.sh, chapter 24).

`make backup` takes a backup and checks that WAL reaches the repository;
while the archiver is failing it takes none and says why, and /healthz
says the shop is degraded. The role
pgBackRest connects as can coordinate a backup and nothing else.

These tests act on the cluster itself (the archive command, the backup
repository), as the cluster superuser over its Unix socket, so they need
the project's own servers (scripts/services.sh up) and pgBackRest.
"""

import json
import shutil
import subprocess
import time
from pathlib import Path

import dj_database_url
import psycopg
import pytest
from django.conf import settings

from shop.local_clusters import socket_dir
from shop.scratch_cluster import as_pg
from shop.wal_archive import archived_through, switch_wal
from tests.dbs import ALL_DATABASES
from tests.replicas import superuser

ROOT = Path(settings.BASE_DIR)
SERVICES = ["bash", str(ROOT / "scripts" / "services.sh")]
REPOSITORY = ROOT / "var" / "pgbackrest" / "repo"

pytestmark = pytest.mark.skipif(
    shutil.which("pgbackrest") is None,
    reason="pgbackrest is not installed (apt-get install pgbackrest)",
)


def primary_port() -> int:
    return int(dj_database_url.parse(settings.OWNER_DATABASE_URL)["PORT"])


def backups() -> list[dict]:
    """The stanza's backups, as `pgbackrest info` lists them."""
    conf = ROOT / "var" / "pgbackrest" / "pgbackrest.conf"
    result = subprocess.run(
        as_pg(["pgbackrest", f"--config={conf}", "--stanza=shop"])
        + ["info", "--output=json"],
        capture_output=True,
        text=True,
        check=True,
    )
    (stanza,) = json.loads(result.stdout)
    return stanza["backup"]


def test_make_backup_takes_a_backup_whose_wal_is_archived():
    before = {b["label"] for b in backups()}
    result = subprocess.run(
        [*SERVICES, "backup", "incr"], capture_output=True, text=True, timeout=180
    )
    assert result.returncode == 0, result.stderr
    new = [b for b in backups() if b["label"] not in before]
    assert len(new) == 1
    # Both ends of the backup's WAL are in the repository: it can be restored.
    assert new[0]["archive"]["start"] and new[0]["archive"]["stop"]


@pytest.mark.django_db(transaction=True, databases=ALL_DATABASES)
def test_make_backup_refuses_while_the_archiver_fails(client):
    with superuser(primary_port()) as connection:
        (before,) = connection.execute(
            "SELECT failed_count FROM pg_stat_archiver"
        ).fetchone()
        # The repository becomes unwritable, as a full or unmounted disk
        # would make it: archive-push fails, the command itself is right.
        REPOSITORY.chmod(0)
        try:
            # A segment to archive (a switch with nothing written since the
            # last one makes none): the command fails, the server retries.
            switch_wal(connection)
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline:
                (failed,) = connection.execute(
                    "SELECT failed_count FROM pg_stat_archiver"
                ).fetchone()
                if failed > before:
                    break
                time.sleep(0.2)
            assert failed > before, "the archiver never failed"
            # The shop still sells, and says what is at risk.
            health = client.get("/healthz")
            assert health.status_code == 200
            assert health.json()["status"] == "degraded"
            assert health.json()["services"]["wal_archive"] == {"status": "failing"}
            labels = {b["label"] for b in backups()}
            result = subprocess.run(
                [*SERVICES, "backup", "incr"],
                capture_output=True,
                text=True,
                timeout=120,
            )
            assert result.returncode != 0
            assert "the WAL archiver is failing" in result.stderr
            assert {b["label"] for b in backups()} == labels, "a backup was taken"
        finally:
            REPOSITORY.chmod(0o700)
            wal = switch_wal(connection)
        # The segments kept meanwhile are archived once the repository is back.
        assert archived_through(connection, wal)


def test_the_backup_role_coordinates_backups_and_reads_nothing():
    with superuser(primary_port()) as connection:
        row = connection.execute(
            "SELECT rolsuper, rolbypassrls, rolreplication, rolcanlogin,"
            " rolpassword IS NULL FROM pg_authid WHERE rolname = 'shop_backup'"
        ).fetchone()
        assert row == (False, False, False, True, True)
        granted = {
            name
            for (name,) in connection.execute(
                "SELECT r.rolname FROM pg_auth_members m"
                " JOIN pg_roles r ON r.oid = m.roleid"
                " JOIN pg_roles u ON u.oid = m.member"
                " WHERE u.rolname = 'shop_backup'"
            )
        }
        assert granted == {"pg_read_all_settings", "pg_checkpoint"}
    # Over its socket (as pgBackRest connects, to the postgres database,
    # where its function grants are: they are per database) it may start
    # a backup, and in the shop's database it cannot read a single order.
    with psycopg.connect(
        host=str(socket_dir()),
        port=primary_port(),
        user="shop_backup",
        dbname="postgres",
        autocommit=True,
    ) as backup:
        assert backup.execute(
            "SELECT has_function_privilege('pg_backup_start(text, boolean)', 'EXECUTE')"
        ).fetchone() == (True,)
    with (
        psycopg.connect(
            host=str(socket_dir()),
            port=primary_port(),
            user="shop_backup",
            dbname=settings.DATABASES["default"]["NAME"],
            autocommit=True,
        ) as backup,
        pytest.raises(psycopg.errors.InsufficientPrivilege),
    ):
        backup.execute("SELECT count(*) FROM orders_order")
    # With no password set, no password opens it over TCP (scram-sha-256).
    with pytest.raises(psycopg.OperationalError, match="password authentication"):
        psycopg.connect(
            host="127.0.0.1",
            port=primary_port(),
            user="shop_backup",
            dbname="postgres",
            sslmode="require",
            password="any-password-at-all",
            connect_timeout=5,
        ).close()
