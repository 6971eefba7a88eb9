"""A throwaway PostgreSQL cluster for drills that would break the dev primary.

Crash tests kill its postmaster, point-in-time-recovery drills restore it
from a base backup: neither may touch the primary that scripts/services.sh
runs on 127.0.0.1:55432. A scratch cluster lives under var/scratch/<name>/,
listens on a free port, and is configured like that primary (init_primary,
ensure_tls_conf and ensure_pgaudit_conf in scripts/services.sh): WAL for
replication, pg_stat_statements (and pgaudit when installed), TLS with the
local CA's server certificate, SCRAM over TCP, trust on its own socket.

    with ScratchCluster("crash") as cluster:
        cluster.initdb()
        cluster.start()
        cluster.bootstrap_shop(seed_scale="small")
        cluster.manage("checkout_recover")   # the app, pointed at this cluster
        cluster.kill()                        # SIGKILL the postmaster
        cluster.start()                       # crash recovery

Plain Python and psycopg, importable without Django settings: pytest and
standalone drill scripts use it alike.
"""

import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import quote

import psycopg

ROOT = Path(__file__).resolve().parent.parent
SCRATCH = ROOT / "var" / "scratch"
TLS = ROOT / "var" / "pg" / "tls"
# The dev services' ports (primary, replica, two shards, pgbouncer): a
# scratch cluster never takes one, even when it is free at the moment.
RESERVED_PORTS = frozenset({55432, 55433, 55434, 55435, 56432})
# The development passwords of scripts/services.sh, by the psql variable
# roles.sql reads, with the environment variable that overrides each there.
ROLE_PASSWORDS = {
    "owner_pw": ("SHOP_OWNER_PASSWORD", "shop_owner"),
    "app_pw": ("SHOP_APP_PASSWORD", "shop_app"),
    "ro_pw": ("SHOP_READONLY_PASSWORD", "shop_readonly"),
    "loader_pw": ("SHOP_LOADER_PASSWORD", "shop_loader"),
    "repl_pw": ("SHOP_REPLICATOR_PASSWORD", "shop_replicator"),
    "monitor_pw": ("SHOP_MONITOR_PASSWORD", "shop_monitor"),
}
OWNER_FILE = "owner.pid"
# pgaudit as the dev primary loads it (ensure_pgaudit_conf): the same lines.
PGAUDIT_CONF = {
    "shared_preload_libraries": "pg_stat_statements,pgaudit",
    "pgaudit.log": "ddl, role",
    "pgaudit.log_catalog": "off",
    "pgaudit.log_parameter": "off",
    "pgaudit.role": "shop_auditor",
}


class ScratchError(RuntimeError):
    pass


def pg_bin() -> Path:
    """The PostgreSQL server binaries, found as scripts/services.sh finds them."""
    if os.environ.get("PG_BIN"):
        return Path(os.environ["PG_BIN"])
    for candidate in sorted(Path("/usr/lib/postgresql").glob("*/bin")):
        if (candidate / "initdb").is_file():
            return candidate
    found = shutil.which("initdb")
    if found:
        return Path(found).parent
    raise ScratchError(
        "PostgreSQL server binaries (initdb, pg_ctl) not found: install them, "
        "e.g. 'apt-get install postgresql-15', or set PG_BIN."
    )


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on, never a dev service's."""
    for _ in range(50):
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            port = probe.getsockname()[1]
        if port not in RESERVED_PORTS:
            return port
    raise ScratchError("no free TCP port found on 127.0.0.1")


def _as_root() -> bool:
    return os.geteuid() == 0


def as_pg(cmd: list) -> list:
    # PostgreSQL refuses to run as root; its files must be the postgres user's.
    return ["runuser", "-u", "postgres", "--", *map(str, cmd)] if _as_root() else cmd


def chown_pg(path: Path) -> None:
    if _as_root():
        shutil.chown(path, "postgres", "postgres")


def _ensure_reachable(path: Path) -> None:
    """Let the postgres user traverse every parent of `path` (ensure_reachable)."""
    if not _as_root():
        return
    for parent in [path, *path.parents]:
        if parent == Path("/"):
            break
        mode = parent.stat().st_mode
        if not mode & 0o001:
            parent.chmod(mode | 0o001)


def _process_alive(pid: int) -> bool:
    # A zombie (a container's PID 1 may never reap it) is dead for this purpose.
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, ProcessLookupError, IndexError):
        return False
    return state not in ("Z", "X")


def _children(pid: int) -> list[int]:
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except (FileNotFoundError, ProcessLookupError, IndexError):
            continue
        if int(fields[1]) == pid:
            found.append(int(stat.parent.name))
    return found


def sweep_orphans() -> list[str]:
    """Destroy the scratch clusters whose creating process has died; their names."""
    swept = []
    for owner_file in sorted(SCRATCH.glob(f"*/{OWNER_FILE}")):
        try:
            owner = int(owner_file.read_text())
        except (OSError, ValueError):
            continue
        if _process_alive(owner):
            continue
        home = owner_file.parent
        # The port it runs on, so that its socket directory goes too.
        try:
            pid_file = (home / "data" / "postmaster.pid").read_text()
            port = int(pid_file.splitlines()[3])
        except (OSError, ValueError, IndexError):
            port = None
        ScratchCluster(home.name, port=port).destroy()
        swept.append(home.name)
    return swept


def _quote_conf(value: str) -> str:
    # Every GUC accepts a quoted value, numbers and booleans included.
    return "'" + str(value).replace("'", "''") + "'"


class ScratchCluster:
    """One PostgreSQL 15 cluster under var/scratch/<name>/, on its own port."""

    def __init__(self, name: str, port: int | None = None, conf: dict | None = None):
        if not re.fullmatch(r"[a-z0-9][a-z0-9_-]{0,30}", name):
            raise ScratchError(f"bad scratch cluster name {name!r}: use [a-z0-9_-]")
        self.name = name
        self.port = port or free_port()
        if self.port in RESERVED_PORTS:
            raise ScratchError(f"port {self.port} belongs to the dev services")
        self.conf = dict(conf or {})
        self.home = SCRATCH / name
        self.datadir = self.home / "data"
        self.log_path = self.home / "postgres.log"
        # For archive_command in a PITR drill: owned by postgres, like the rest.
        self.archive_dir = self.home / "wal-archive"
        # Unix socket paths are limited to ~107 bytes: /tmp keeps it short.
        self.socket_dir = Path(f"/tmp/shop-scratch-{name}-{self.port}")
        self.bin = pg_bin()

    # --- life cycle ---------------------------------------------------------

    def prepare_home(self) -> None:
        SCRATCH.mkdir(parents=True, exist_ok=True)
        _ensure_reachable(SCRATCH)
        for d in (self.home, self.archive_dir):
            d.mkdir(exist_ok=True)
            d.chmod(0o700)
            chown_pg(d)
        # Who made it: sweep_orphans() removes the clusters of a test run
        # that was killed before it could destroy them.
        (self.home / OWNER_FILE).write_text(str(os.getpid()))

    def initdb(self) -> None:
        """Create the cluster and write the dev primary's settings into it."""
        if (self.datadir / "PG_VERSION").exists():
            raise ScratchError(f"{self.datadir} already holds a cluster")
        if not (TLS / "server.crt").is_file():
            raise ScratchError(
                f"no server certificate in {TLS}: run 'scripts/services.sh up' "
                "once, which makes the local CA and the certificate"
            )
        self.prepare_home()
        self._run(
            as_pg(
                [
                    self.bin / "initdb",
                    "-D",
                    self.datadir,
                    "-U",
                    "postgres",
                    "--auth-local=trust",
                    "--auth-host=scram-sha-256",
                    "-E",
                    "UTF8",
                    "--locale=C.UTF-8",
                ]
            )
        )
        settings = {
            "listen_addresses": "127.0.0.1",
            "port": str(self.port),
            "unix_socket_directories": str(self.socket_dir),
            "wal_level": "replica",
            "max_wal_senders": "10",
            "max_replication_slots": "10",
            "shared_preload_libraries": "pg_stat_statements",
            "max_connections": "200",
            "fsync": "on",
            "ssl": "on",
            "ssl_cert_file": str(TLS / "server.crt"),
            "ssl_key_file": str(TLS / "server.key"),
            "log_destination": "stderr",
            "logging_collector": "off",
        }
        if self._pgaudit_installed():
            settings.update(PGAUDIT_CONF)
        self.configure({**settings, **self.conf})
        # Loopback logins only over TLS, as ensure_tls_conf makes them.
        hba = self.datadir / "pg_hba.conf"
        hba.write_text(re.sub(r"(?m)^host(\s)", r"hostssl\1", hba.read_text()))

    def configure(self, conf: dict) -> None:
        """Append settings to postgresql.conf; later lines win, so they override."""
        lines = [f"{key} = {_quote_conf(value)}" for key, value in conf.items()]
        with open(self.datadir / "postgresql.conf", "a") as f:
            f.write("\n# --- scratch cluster (shop/scratch_cluster.py) ---\n")
            f.write("\n".join(lines) + "\n")

    def start(self) -> None:
        """Start the postmaster; after kill() this is crash recovery."""
        self.socket_dir.mkdir(exist_ok=True)
        chown_pg(self.socket_dir)
        if not self.log_path.exists():
            self.log_path.touch()
            chown_pg(self.log_path)
        # Port and socket on the command line too: a data directory restored
        # from another cluster's backup carries that cluster's port.
        options = f"-p {self.port} -c unix_socket_directories={self.socket_dir}"
        self._run(
            as_pg(
                [
                    self.bin / "pg_ctl",
                    "-D",
                    self.datadir,
                    "-l",
                    self.log_path,
                    "-o",
                    options,
                    "-w",
                    "-t",
                    "120",
                    "start",
                ]
            ),
            what=f"start (see {self.log_path})",
        )

    def stop(self, mode: str = "fast") -> None:
        if not self.running():
            return
        self._run(
            as_pg([self.bin / "pg_ctl", "-D", self.datadir, "-m", mode, "-w", "stop"])
        )

    def restart(self) -> None:
        self.stop()
        self.start()

    def postmaster_pid(self) -> int | None:
        try:
            first = (self.datadir / "postmaster.pid").read_text().split("\n", 1)[0]
        except FileNotFoundError:
            return None
        return int(first) if first.strip().isdigit() else None

    def running(self) -> bool:
        pid = self.postmaster_pid()
        return pid is not None and _process_alive(pid)

    def kill(self, timeout: float = 30) -> int:
        """SIGKILL the postmaster, as a power cut would; return its pid.

        Its backends notice that it died and exit on their own. A new
        postmaster refuses to start while any of them still holds the old
        shared memory, so wait until they are gone and the port is closed.
        """
        pid = self.postmaster_pid()
        if pid is None or not _process_alive(pid):
            raise ScratchError(f"scratch cluster {self.name} is not running")
        children = _children(pid)
        os.kill(pid, signal.SIGKILL)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            left = [p for p in [pid, *children] if _process_alive(p)]
            if not left and not self._port_answers():
                break
            time.sleep(0.05)
        else:
            raise ScratchError(f"processes {left} of the killed postmaster still run")
        # The next postmaster refuses to start while the pid in postmaster.pid
        # exists, and a zombie does until its new parent, PID 1, reaps it.
        # Every process of the old one is gone by now, so a zombie that
        # lingers is stale and the lock file may go.
        while Path(f"/proc/{pid}").exists():
            if time.monotonic() > deadline:
                (self.datadir / "postmaster.pid").unlink(missing_ok=True)
                break
            time.sleep(0.05)
        return pid

    def _port_answers(self) -> bool:
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=0.5):
                return True
        except OSError:
            return False

    def destroy(self) -> None:
        """Stop at once and delete every file of the cluster."""
        pid = self.postmaster_pid()
        if pid is not None and _process_alive(pid):
            subprocess.run(
                as_pg(
                    [self.bin / "pg_ctl", "-D", self.datadir, "-m", "immediate", "-w"]
                    + ["stop"]
                ),
                capture_output=True,
            )
            if _process_alive(pid):
                os.kill(pid, signal.SIGKILL)
        shutil.rmtree(self.home, ignore_errors=True)
        shutil.rmtree(self.socket_dir, ignore_errors=True)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.destroy()

    # --- backups (point-in-time recovery drills) ---------------------------

    def base_backup(self, dest: Path) -> Path:
        """pg_basebackup of this running cluster into `dest` (a new directory)."""
        dest = Path(dest)
        if not dest.parent.exists():
            # pg_basebackup runs as postgres, which must create `dest` here.
            dest.parent.mkdir(parents=True)
            chown_pg(dest.parent)
        self._run(
            as_pg(
                [self.bin / "pg_basebackup", "-h", self.socket_dir, "-p", self.port]
                + ["-U", "postgres", "-D", dest, "-X", "stream", "-c", "fast"]
            )
        )
        return dest

    def restore_from(self, backup: Path, conf: dict | None = None) -> None:
        """Make this (new) cluster a copy of `backup`, to recover with `conf`.

        `conf` is appended to postgresql.conf (restore_command,
        recovery_target_time, ...), and recovery.signal makes the server
        replay the archive up to the target on start().
        """
        if self.datadir.exists():
            raise ScratchError(f"{self.datadir} exists: restore into a new cluster")
        self.prepare_home()
        self._run(as_pg(["cp", "-a", Path(backup), self.datadir]))
        self.configure(
            {"unix_socket_directories": str(self.socket_dir), **(conf or {})}
        )
        (self.datadir / "recovery.signal").touch()
        chown_pg(self.datadir / "recovery.signal")

    def wait_for_recovery(self, timeout: float = 60) -> None:
        """Wait until archive recovery has ended and the server takes writes.

        start() returns once connections are accepted, which a restored
        cluster does while it still replays the archive (hot standby).
        """
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self.superuser() as conn:
                if not conn.execute("SELECT pg_is_in_recovery()").fetchone()[0]:
                    return
            time.sleep(0.1)
        raise ScratchError(f"{self.name} still in recovery; see {self.log_path}")

    # --- clients -----------------------------------------------------------

    def superuser(self, dbname: str = "postgres") -> psycopg.Connection:
        """An autocommit connection as postgres, over the unix socket (trust)."""
        return psycopg.connect(
            host=str(self.socket_dir),
            port=self.port,
            user="postgres",
            dbname=dbname,
            autocommit=True,
        )

    def psql(self, *args, dbname: str = "postgres") -> None:
        self._run(
            [self.bin / "psql", "-X", "-q", "-v", "ON_ERROR_STOP=1"]
            + ["-h", self.socket_dir, "-p", self.port, "-U", "postgres"]
            + ["-d", dbname, *args]
        )

    def url(self, role: str, dbname: str = "shop") -> str:
        password = quote(_password(role), safe="")
        return f"postgres://{role}:{password}@127.0.0.1:{self.port}/{dbname}"

    def env(self) -> dict:
        """os.environ with the shop's settings pointed at this cluster.

        The replica aliases read this primary too: the app then reads what
        it wrote. REDIS_URL is empty, so Celery runs tasks in the process
        and caches stay in it: the shared Redis and its Celery worker serve
        the dev database, which must never see this cluster's ids.
        """
        env = dict(os.environ)
        for name in ("DATABASE_VIA_PGBOUNCER", "SHOP_DATABASE", "CELERY_BROKER_URL"):
            env.pop(name, None)
        env.update(
            DJANGO_SETTINGS_MODULE="shop.settings.local",
            DATABASE_URL=self.url("shop_app"),
            OWNER_DATABASE_URL=self.url("shop_owner"),
            REPLICA_DATABASE_URL=self.url("shop_app"),
            READONLY_DATABASE_URL=self.url("shop_readonly"),
            LOADER_DATABASE_URL=self.url("shop_loader"),
            MONITOR_DATABASE_URL=self.url("shop_monitor"),
            DB_SSLMODE="verify-full",
            DB_SSLROOTCERT=str(TLS / "ca.crt"),
            REDIS_URL="",
            MONGO_URL="",
            PYTHONUNBUFFERED="1",
        )
        return env

    def manage(self, *args, check: bool = True, capture: bool = False):
        """Run `manage.py <args>` against this cluster; a CompletedProcess."""
        python = ROOT / ".venv" / "bin" / "python"
        cmd = [str(python if python.exists() else sys.executable), "manage.py"]
        return subprocess.run(
            [*cmd, *map(str, args)],
            cwd=ROOT,
            env=self.env(),
            check=check,
            capture_output=capture,
            text=True,
        )

    def bootstrap_shop(self, seed_scale: str | None = "small") -> None:
        """Roles, the shop database, its migrations and (optionally) the seed.

        The steps of scripts/services.sh ensure_roles and `make run`.
        """
        roles_sql = ROOT / "scripts" / "sql" / "roles.sql"
        variables = []
        for name in sorted(set(re.findall(r":'(\w+)'", roles_sql.read_text()))):
            variables += ["-v", f"{name}={_password_of_variable(name)}"]
        self.psql(*variables, "-f", roles_sql)
        self._run(
            [self.bin / "createdb", "-h", self.socket_dir, "-p", self.port]
            + ["-U", "postgres", "-O", "shop_owner", "shop"]
        )
        database_sql = ROOT / "scripts" / "sql" / "database.sql"
        self.psql("-f", database_sql, dbname="template1")
        self.psql("-f", database_sql, dbname="shop")
        self.manage("migrate", "--database", "owner", "-v", "0")
        if seed_scale:
            self.manage("seed", "--scale", seed_scale)

    def log_text(self) -> str:
        return self.log_path.read_text(errors="replace")

    def _pgaudit_installed(self) -> bool:
        out = subprocess.run(
            [self.bin / "pg_config", "--pkglibdir"], capture_output=True, text=True
        )
        libdir = Path(out.stdout.strip() or self.bin.parent / "lib")
        return (libdir / "pgaudit.so").is_file()

    def _run(self, cmd: list, what: str | None = None) -> None:
        done = subprocess.run(list(map(str, cmd)), capture_output=True, text=True)
        if done.returncode:
            raise ScratchError(
                f"scratch cluster {self.name}: {what or Path(str(cmd[0])).name} "
                f"failed ({done.returncode}): {done.stderr.strip() or done.stdout}"
            )


def _password_of_variable(variable: str) -> str:
    try:
        env_name, default = ROLE_PASSWORDS[variable]
    except KeyError:
        raise ScratchError(
            f"scripts/sql/roles.sql reads the psql variable :{variable}, which "
            "shop/scratch_cluster.py does not know: add it to ROLE_PASSWORDS "
            "as scripts/services.sh ensure_roles passes it"
        ) from None
    return os.environ.get(env_name, default)


def _password(role: str) -> str:
    variable = {
        "shop_owner": "owner_pw",
        "shop_app": "app_pw",
        "shop_readonly": "ro_pw",
        "shop_loader": "loader_pw",
        "shop_replicator": "repl_pw",
        "shop_monitor": "monitor_pw",
    }[role]
    return _password_of_variable(variable)
