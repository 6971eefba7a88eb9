"""The scratch cluster harness (shop/scratch_cluster.py) does what drills need.

A cluster of its own, set up like the dev primary, that survives a SIGKILL
with its committed rows, and whose base backup and WAL archive restore it
on another port: the crash test and the point-in-time recovery drill build
on exactly these.
"""

import os
import socket
import subprocess

import psycopg
import pytest

from shop.scratch_cluster import (
    RESERVED_PORTS,
    TLS,
    ScratchCluster,
    ScratchError,
    free_port,
    sweep_orphans,
)

pytestmark = pytest.mark.crash


@pytest.fixture
def cluster():
    with ScratchCluster(f"harness-{os.getpid()}") as scratch:
        scratch.initdb()
        scratch.start()
        yield scratch


def test_free_ports_are_never_the_dev_services():
    assert not {free_port() for _ in range(20)} & RESERVED_PORTS
    with pytest.raises(ScratchError, match="dev services"):
        ScratchCluster("harness-reserved", port=55432)


def test_a_scratch_cluster_is_set_up_like_the_dev_primary(cluster):
    with cluster.superuser() as conn:
        show = {
            name: conn.execute(f"SHOW {name}").fetchone()[0]
            for name in ("wal_level", "fsync", "ssl", "port", "data_directory")
        }
        preloaded = conn.execute("SHOW shared_preload_libraries").fetchone()[0]
    assert show == {
        "wal_level": "replica",
        "fsync": "on",
        "ssl": "on",
        "port": str(cluster.port),
        "data_directory": str(cluster.datadir),
    }
    assert "pg_stat_statements" in preloaded
    assert cluster.port not in RESERVED_PORTS
    # TCP without TLS is refused; with it, the local CA verifies the server.
    tcp = {"host": "127.0.0.1", "port": cluster.port, "user": "postgres"}
    with pytest.raises(psycopg.OperationalError, match="no encryption"):
        psycopg.connect(**tcp, sslmode="disable", dbname="postgres", password="x")
    with pytest.raises(psycopg.OperationalError, match="password authentication"):
        psycopg.connect(
            **tcp,
            dbname="postgres",
            password="wrong",
            sslmode="verify-full",
            sslrootcert=str(TLS / "ca.crt"),
        )


def test_a_killed_cluster_recovers_what_it_committed(cluster):
    with cluster.superuser() as conn:
        conn.execute("CREATE TABLE drill (n int)")
        conn.execute("INSERT INTO drill SELECT generate_series(1, 1000)")
    pid = cluster.kill()
    assert not cluster.running()
    cluster.start()
    assert cluster.postmaster_pid() != pid
    assert "automatic recovery in progress" in cluster.log_text()
    with cluster.superuser() as conn:
        assert conn.execute("SELECT count(*) FROM drill").fetchone()[0] == 1000


def test_a_base_backup_and_the_archive_restore_on_another_port():
    name = f"harness-pitr-{os.getpid()}"
    archive = "test ! -f {a}/%f && cp %p {a}/%f"
    with (
        ScratchCluster(name) as source,
        ScratchCluster(name + "-restored") as restored,
    ):
        source.conf = {
            "archive_mode": "on",
            "archive_command": archive.format(a=source.archive_dir),
        }
        source.initdb()
        source.start()
        with source.superuser() as conn:
            conn.execute("CREATE TABLE drill (n int)")
            conn.execute("INSERT INTO drill VALUES (1)")
        source.base_backup(source.home / "base")
        with source.superuser() as conn:
            conn.execute("INSERT INTO drill VALUES (2)")
        # A clean stop archives the last WAL segment.
        source.stop()

        restored.restore_from(
            source.home / "base",
            conf={
                "restore_command": f"cp {source.archive_dir}/%f %p",
                "recovery_target_action": "promote",
                "archive_mode": "off",
            },
        )
        restored.start()
        restored.wait_for_recovery()
        with restored.superuser() as conn:
            rows = conn.execute("SELECT array_agg(n ORDER BY n) FROM drill")
            assert rows.fetchone()[0] == [1, 2]
            assert conn.execute("SHOW port").fetchone()[0] == str(restored.port)
    assert not source.home.exists() and not restored.home.exists()


def test_sweep_destroys_the_clusters_of_a_dead_test_run(cluster):
    # The pid of a process that has ended stands for a test run killed mid-way.
    ended = subprocess.Popen(["true"])
    ended.wait()
    (cluster.home / "owner.pid").write_text(str(ended.pid))

    assert cluster.name in sweep_orphans()

    assert not cluster.home.exists() and not cluster.socket_dir.exists()
    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.1", cluster.port), timeout=1).close()
