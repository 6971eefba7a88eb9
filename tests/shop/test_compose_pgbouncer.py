"""The compose stack's pgbouncer, started here against the local primary.

No Docker engine runs the suite, so tests/shop/test_compose.py reads
docker-compose.yml. For pgbouncer this file goes further: it runs the
service's entrypoint (scripts/docker/pgbouncer-entrypoint.sh) with the
service's environment and the pgbouncer installed here, the image's version
on Debian bookworm, pointed at the local primary instead of the `primary`
container. So the settings the container would run with are accepted by a
real pgbouncer, let shop_app in with the password file they write, pool
transactions, and speak TLS exactly as docker-compose.yml documents:
plaintext to the app's containers, TLS to a primary that offers it.
"""

import contextlib
import os
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path

import psycopg
import pytest
import yaml
from django.db import connections

from shop import pgbouncer
from tests.shop.test_compose import COMPOSE_FILE, environment, script_of

pytestmark = pytest.mark.django_db(databases=["default", "owner"])

# What the app's containers ask for (test_compose.py: app_sslmode): TLS if
# offered, which this pgbouncer does not.
COMPOSE_SSLMODE = "prefer"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_until_listening(port, process, log, timeout=10.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"pgbouncer exited with {process.returncode}: {log()}")
        with (
            contextlib.suppress(OSError),
            socket.create_connection(("127.0.0.1", port), timeout=0.2),
        ):
            return
        time.sleep(0.05)
    pytest.fail(f"pgbouncer did not listen on {port}: {log()}")


@pytest.fixture(scope="module")
def service():
    return yaml.safe_load(COMPOSE_FILE.read_text())["services"]["pgbouncer"]


@pytest.fixture
def compose_pgbouncer(service, settings):
    """The service's pgbouncer on a free port of 127.0.0.1, its clients' settings.

    Django's settings point shop/pgbouncer.py's helpers at it, with the
    sslmode of the compose app, for the test only.
    """
    binary = shutil.which("pgbouncer", path=f"{os.environ['PATH']}:/usr/sbin")
    if binary is None:
        pytest.skip("pgbouncer is not installed: apt-get install pgbouncer")
    primary = connections["owner"].settings_dict
    port = free_port()
    env = {
        "PATH": os.environ["PATH"],
        **environment(service),
        # Where the container's would be: the primary, and the network.
        "SHOP_PRIMARY_HOST": primary["HOST"],
        "SHOP_PRIMARY_PORT": str(primary["PORT"]),
        "SHOP_PGBOUNCER_LISTEN_ADDR": "127.0.0.1",
        "SHOP_PGBOUNCER_PORT": str(port),
        # The local role's password, whatever compose's default is.
        "SHOP_APP_PASSWORD": connections["default"].settings_dict["PASSWORD"],
        "SHOP_PGBOUNCER_BIN": binary,
    }
    directory = tempfile.mkdtemp(prefix="shop-compose-pgbouncer-")
    env["SHOP_PGBOUNCER_DIR"] = directory
    # pgbouncer refuses to run as root; the image runs it as postgres.
    as_user = {}
    if os.geteuid() == 0:
        shutil.chown(directory, "postgres", "postgres")
        as_user = {"user": "postgres", "group": "postgres", "extra_groups": []}
    log_path = Path(directory) / "pgbouncer.log"

    def log() -> str:
        return log_path.read_text(errors="replace")[-2000:]

    with open(log_path, "wb") as log_file:
        process = subprocess.Popen(
            ["bash", str(script_of(service, "entrypoint"))],
            env=env,
            stdout=log_file,
            stderr=subprocess.STDOUT,
            **as_user,
        )
    try:
        wait_until_listening(port, process, log)
        settings.PGBOUNCER_HOST = "127.0.0.1"
        settings.PGBOUNCER_PORT = port
        settings.PGBOUNCER_ADMIN_PASSWORD = env["SHOP_PGBOUNCER_ADMIN_PASSWORD"]
        settings.DB_SSLMODE = COMPOSE_SSLMODE
        yield env
    finally:
        # Its server connections to the test database end with it.
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        shutil.rmtree(directory, ignore_errors=True)


@pytest.fixture
def clients(compose_pgbouncer):
    """New client connections as shop_app, with the compose app's sslmode."""
    opened = []

    def connect(**overrides):
        conn = pgbouncer.connect(**{"sslmode": COMPOSE_SSLMODE, **overrides})
        opened.append(conn)
        return conn

    yield connect
    for conn in opened:
        conn.close()


def test_pgbouncer_runs_with_the_settings_the_service_writes(compose_pgbouncer):
    running = pgbouncer.config()

    assert running["pool_mode"] == "transaction"
    assert running["default_pool_size"] == compose_pgbouncer["SHOP_PGBOUNCER_POOL_SIZE"]
    assert (
        running["max_client_conn"]
        == compose_pgbouncer["SHOP_PGBOUNCER_MAX_CLIENT_CONN"]
    )
    assert running["client_tls_sslmode"] == "disable"
    assert running["server_tls_sslmode"] == "prefer"


def test_shop_app_gets_in_with_its_password_and_no_other(clients):
    assert clients().execute("SELECT current_user").fetchone() == ("shop_app",)

    with pytest.raises(psycopg.OperationalError, match="authentication failed"):
        clients(password="not-the-password")


def test_two_clients_that_take_turns_share_one_server_connection(clients):
    a, b = clients(), clients()

    server = a.execute("SELECT pg_backend_pid()").fetchone()[0]
    assert b.execute("SELECT pg_backend_pid()").fetchone()[0] == server


def test_clients_speak_plaintext_and_the_primary_is_reached_over_tls(clients):
    """As docker-compose.yml documents it, with a primary that offers TLS."""
    conn = clients()

    assert not conn.pgconn.ssl_in_use
    server_leg = conn.execute(
        "SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()"
    ).fetchone()
    assert server_leg == (True,)
    with pytest.raises(psycopg.OperationalError, match="does not support SSL"):
        clients(sslmode="require")
