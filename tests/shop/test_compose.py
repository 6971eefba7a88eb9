"""docker-compose.yml, checked by reading it: no Docker engine, no database.

The stack cannot be started on every machine that runs the suite, so these
tests catch what usually breaks a compose file without anyone noticing: a
renamed script, a URL naming a host that is not a service, a depends_on
condition that can never become true, a replica without a replication slot,
a settings variable the containers never set.

Values are read the way `docker compose` reads them with an empty
environment: every `${VAR:-default}` becomes its default.
"""

import ast
import configparser
import contextlib
import fnmatch
import http.server
import json
import os
import re
import shlex
import shutil
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path, PurePosixPath
from urllib.parse import unquote, urlparse

import jsonschema
import pytest
import yaml
from celery.beat import Scheduler
from django.conf import settings as django_settings

from tests.pg_conf import pg_conf

ROOT = Path(__file__).resolve().parents[2]
COMPOSE_FILE = ROOT / "docker-compose.yml"
SETTINGS_FILE = ROOT / "shop" / "settings" / "base.py"
DOCKER_SCRIPTS = ROOT / "scripts" / "docker"
GUNICORN_CONF = ROOT / "scripts" / "gunicorn.conf.py"

SERVICES = {
    "primary",
    "replica",
    "pgbouncer",
    "redis",
    "mongo",
    "web",
    "worker",
    "beat",
    "cache-listen",
}
# The services built from the app's image, with the app's environment.
APP_SERVICES = ("web", "worker", "beat", "cache-listen")
BACKING_SERVICES = ("primary", "replica", "pgbouncer", "redis", "mongo")
# The port each image's server listens on inside the compose network.
IMAGE_PORTS = {"postgres": 5432, "redis": 6379, "mongo": 27017}
# Settings a hot standby must have at least as high as its primary, or it
# refuses to start.
STANDBY_MINIMUMS = (
    "max_connections",
    "max_wal_senders",
    "max_worker_processes",
    "max_prepared_transactions",
    "max_locks_per_transaction",
)

# Compose interpolation: $$, ${VAR}, ${VAR:-default}, ${VAR-default},
# ${VAR:?error}, ${VAR?error}, $VAR.
INTERPOLATION = re.compile(
    r"\$(?:(?P<escaped>\$)"
    r"|\{(?P<braced>[A-Za-z_][A-Za-z0-9_]*)(?:(?P<op>:?[-?])(?P<arg>[^}]*))?\}"
    r"|(?P<named>[A-Za-z_][A-Za-z0-9_]*))"
)


def interpolate(value):
    """The value compose would use with no variables set in the environment."""

    def replace(match):
        if match["escaped"]:
            return "$"
        if match["op"] and match["op"].endswith("-"):
            return match["arg"]
        return ""

    return INTERPOLATION.sub(replace, value)


def variables_without_default(value):
    return [
        match["braced"] or match["named"]
        for match in INTERPOLATION.finditer(value)
        if not match["escaped"] and not (match["op"] or "").endswith("-")
    ]


def strings_in(node):
    if isinstance(node, str):
        yield node
    elif isinstance(node, dict):
        for key, value in node.items():
            yield from strings_in(key)
            yield from strings_in(value)
    elif isinstance(node, list):
        for item in node:
            yield from strings_in(item)


@pytest.fixture(scope="module")
def compose():
    return yaml.safe_load(COMPOSE_FILE.read_text())


@pytest.fixture(scope="module")
def services(compose):
    return compose["services"]


def environment(service):
    """A service's environment as a dict of interpolated strings."""
    env = service.get("environment") or {}
    if isinstance(env, list):
        env = dict(item.split("=", 1) if "=" in item else (item, "") for item in env)
    return {
        name: interpolate("" if value is None else str(value))
        for name, value in env.items()
    }


def as_argv(value):
    if value is None:
        return []
    if isinstance(value, str):
        return shlex.split(value)
    return [str(arg) for arg in value]


def depends_on(service):
    """{dependency: condition}; the short list form means service_started."""
    deps = service.get("depends_on") or {}
    if isinstance(deps, list):
        return dict.fromkeys(deps, "service_started")
    return {
        name: (spec or {}).get("condition", "service_started")
        for name, spec in deps.items()
    }


def mounts(service):
    """(kind, source, target) for each entry of a service's volumes."""
    result = []
    for entry in service.get("volumes") or []:
        if isinstance(entry, dict):
            source = entry.get("source", "")
            kind = entry.get("type") or (
                "bind" if source.startswith((".", "/")) else "volume"
            )
            result.append((kind, source, entry["target"]))
            continue
        source, target = interpolate(entry).split(":")[:2]
        kind = "bind" if source.startswith((".", "/", "~")) else "volume"
        result.append((kind, source, target))
    return result


def dockerfile_of(service):
    build = service["build"]
    if isinstance(build, str):
        build = {"context": build}
    context = (ROOT / build.get("context", ".")).resolve()
    return context, context / build.get("dockerfile", "Dockerfile")


def dockerfile_instructions(path):
    """(INSTRUCTION, arguments) pairs, continuation lines joined."""
    text = re.sub(r"\\\n", " ", path.read_text())
    result = []
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            instruction, _, args = line.partition(" ")
            result.append((instruction.upper(), args.strip()))
    return result


def workdir_of(service):
    _, dockerfile = dockerfile_of(service)
    workdir = "/"
    for instruction, args in dockerfile_instructions(dockerfile):
        if instruction == "WORKDIR":
            workdir = str(PurePosixPath(workdir) / args)
    return PurePosixPath(workdir)


def host_path(service, container_path):
    """The repository file behind a path inside a service's container, or None.

    A path comes from the repository either through a bind mount or, for a
    service built from the repository, through the image (COPY . into WORKDIR).
    """
    path = PurePosixPath(container_path)
    for kind, source, target in mounts(service):
        if kind != "bind":
            continue
        target = PurePosixPath(target)
        if path == target or target in path.parents:
            return (ROOT / source / path.relative_to(target)).resolve()
    if "build" in service:
        workdir = workdir_of(service)
        if workdir in path.parents:
            context, _ = dockerfile_of(service)
            return context / path.relative_to(workdir)
    return None


def image_port(service):
    image = service.get("image", "")
    for name, port in IMAGE_PORTS.items():
        if image.split(":")[0].split("/")[-1] == name:
            return port
    return None


def postgres_settings(service):
    """{name: value} from a postgres command's `-c name=value` arguments."""
    argv = as_argv(service.get("command"))
    return dict(
        argv[i + 1].split("=", 1)
        for i, arg in enumerate(argv[:-1])
        if arg == "-c" and "=" in argv[i + 1]
    )


def settings_environment():
    """{name: default} for every env()/env_bool() call in shop/settings/base.py."""
    found = {}
    for node in ast.walk(ast.parse(SETTINGS_FILE.read_text())):
        if (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Name)
            and node.func.id in {"env", "env_bool"}
            and node.args
            and isinstance(node.args[0], ast.Constant)
        ):
            default = node.args[1] if len(node.args) > 1 else None
            found[node.args[0].value] = (
                default.value if isinstance(default, ast.Constant) else None
            )
    return found


def script_of(service, key):
    """The repository file a service runs as its entrypoint or command."""
    argv = as_argv(service.get(key))
    assert argv, f"no {key}"
    path = host_path(service, argv[0])
    assert path is not None, f"{argv[0]} does not come from the repository"
    return path


def shell_text(path):
    """A script's text with comments dropped and continuation lines joined."""
    lines = [
        line
        for line in path.read_text().splitlines()
        if not line.lstrip().startswith("#")
    ]
    return re.sub(r"\\\n\s*", " ", "\n".join(lines))


# --- the services and their files ------------------------------------------


def test_the_stack_has_every_service(services):
    assert set(services) >= SERVICES, f"missing: {sorted(SERVICES - set(services))}"


def test_every_variable_has_a_default(compose):
    """`docker compose up` must work with no .env file and nothing exported."""
    missing = {
        name for text in strings_in(compose) for name in variables_without_default(text)
    }
    assert not missing, f"variables without a ${{VAR:-default}}: {sorted(missing)}"


def test_built_services_have_their_dockerfile_and_copied_files(services):
    for name, service in services.items():
        if "build" not in service:
            continue
        context, dockerfile = dockerfile_of(service)
        assert context.is_dir(), f"{name}: build context {context} is missing"
        assert dockerfile.is_file(), f"{name}: {dockerfile} is missing"
        for instruction, args in dockerfile_instructions(dockerfile):
            if instruction not in {"COPY", "ADD"} or "--from" in args:
                continue
            words = [w for w in shlex.split(args) if not w.startswith("--")]
            for source in words[:-1]:
                assert (context / source).exists(), (
                    f"{name}: {instruction} {source}: no such file"
                )


def test_the_app_image_is_python_311_slim(services):
    _, dockerfile = dockerfile_of(services["web"])
    bases = [
        args for instr, args in dockerfile_instructions(dockerfile) if instr == "FROM"
    ]
    assert bases and bases[0].split()[0] == "python:3.11-slim"


def test_bind_mounted_files_exist(services):
    for name, service in services.items():
        for kind, source, target in mounts(service):
            if kind == "bind":
                assert (ROOT / source).exists(), (
                    f"{name}: {source} (for {target}) is missing"
                )


def test_entrypoints_and_commands_from_the_repository_exist(services):
    for name, service in services.items():
        for key in ("entrypoint", "command"):
            argv = as_argv(service.get(key))
            if not argv or not argv[0].startswith("/"):
                continue  # a program on the image's PATH, such as postgres or celery
            path = host_path(service, argv[0])
            assert path is not None, (
                f"{name}: {key} {argv[0]} is neither mounted nor built in"
            )
            assert path.is_file(), f"{name}: {key} {argv[0]} -> {path} is missing"
            assert path.stat().st_mode & 0o111, f"{name}: {path} is not executable"


def test_the_image_keeps_what_the_app_needs(services):
    """.dockerignore keeps the virtualenv, var/ and .git out, and nothing more."""
    patterns = [
        line.strip()
        for line in (ROOT / ".dockerignore").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]
    assert {".venv", "var", ".git"} <= {p.strip("/") for p in patterns}

    def ignored(relative):
        parts = PurePosixPath(relative).parts
        prefixes = ["/".join(parts[: i + 1]) for i in range(len(parts))]
        return any(
            fnmatch.fnmatch(prefix, p.strip("/"))
            for p in patterns
            for prefix in prefixes
        )

    needed = [
        "requirements.txt",
        "manage.py",
        "shop/settings/base.py",
        "shop/celery.py",
    ]
    web = services["web"]
    needed.append(str(script_of(web, "command").relative_to(ROOT)))
    for relative in needed:
        assert (ROOT / relative).exists(), relative
        assert not ignored(relative), f".dockerignore drops {relative}"


# --- start-up order and health ----------------------------------------------


def test_backing_services_have_healthchecks(services):
    for name in BACKING_SERVICES:
        check = services[name].get("healthcheck") or {}
        assert check.get("test") and not check.get("disable"), (
            f"{name} has no healthcheck"
        )


def test_every_service_has_a_healthcheck(services):
    """worker, beat and cache-listen too: `docker compose ps` shows them stuck."""
    for name, service in services.items():
        check = service.get("healthcheck") or {}
        assert check.get("test") and not check.get("disable"), (
            f"{name} has no healthcheck"
        )
        assert check["test"][0] in {"CMD", "CMD-SHELL"}, name
        # Docker's defaults are 30 s each.
        timeout = seconds(check.get("timeout", "30s"))
        assert timeout <= seconds(check.get("interval", "30s")), (
            f"{name}: a check that may outlast its interval piles up"
        )


def test_depends_on_waits_for_health_that_can_be_reported(services):
    for name, service in services.items():
        for dependency, condition in depends_on(service).items():
            assert dependency in services, f"{name} depends on unknown {dependency}"
            assert condition in {"service_healthy", "service_completed_successfully"}, (
                f"{name} -> {dependency}: {condition} does not wait for readiness"
            )
            if condition == "service_healthy":
                check = services[dependency].get("healthcheck") or {}
                assert check.get("test") and not check.get("disable"), (
                    f"{name} waits for {dependency} to be healthy, "
                    "but it has no healthcheck"
                )


class _Answer(http.server.BaseHTTPRequestHandler):
    status = 200

    def do_GET(self):  # noqa: N802 (http.server's name)
        self.send_response(self.status)
        self.send_header("Content-Type", "application/json")
        self.end_headers()
        self.wfile.write(b'{"status": "whatever"}')

    def log_message(self, *args):
        pass


@contextlib.contextmanager
def server_answering(status):
    """An HTTP server on a free port whose every GET answers `status`."""
    handler = type("Answer", (_Answer,), {"status": status})
    server = http.server.HTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server.server_address[1]
    finally:
        server.shutdown()
        server.server_close()


def run_web_healthcheck(services, port):
    """The web service's healthcheck, run here against `port` instead of 8000."""
    check = services["web"]["healthcheck"]
    kind, *argv = check["test"]
    assert kind == "CMD" and argv[:2] == ["python", "-c"], check["test"]
    code = argv[2]
    assert "127.0.0.1:8000/readyz" in code, code
    return subprocess.run(
        [sys.executable, "-c", code.replace(":8000/", f":{port}/")],
        capture_output=True,
        timeout=30,
        check=False,
    ).returncode


def seconds(duration):
    """Seconds in a compose duration: "1m30s", "10s", "500ms", "2h"."""
    total = 0.0
    units = {"h": 3600, "m": 60, "s": 1, "ms": 0.001, "us": 1e-6}
    parts = re.findall(r"(\d+(?:\.\d+)?)(ms|us|h|m|s)", str(duration))
    assert parts, duration
    for number, unit in parts:
        total += float(number) * units[unit]
    return total


def test_the_web_is_healthy_exactly_while_readyz_answers_200(services):
    """200: the primary answers; 503: it does not (shop/health.py)."""
    for status, healthy in ((200, True), (503, False), (500, False)):
        with server_answering(status) as port:
            returncode = run_web_healthcheck(services, port)
        assert (returncode == 0) == healthy, f"/readyz {status}: exit {returncode}"
    with socket.socket() as closed:  # bound, never listening: refused
        closed.bind(("127.0.0.1", 0))
        assert run_web_healthcheck(services, closed.getsockname()[1]) != 0
    # The check gives up before Docker kills it, so a hung /readyz is a
    # failed check rather than a killed one.
    check = services["web"]["healthcheck"]
    inner = re.search(r"timeout=(\d+(?:\.\d+)?)", check["test"][-1])
    assert inner and float(inner[1]) < seconds(check["timeout"])


def test_the_app_waits_for_every_backing_service(services):
    web = depends_on(services["web"])
    for name in BACKING_SERVICES:
        assert web.get(name) == "service_healthy", f"web does not wait for {name}"
    assert depends_on(services["replica"]).get("primary") == "service_healthy"


# --- configuration of the app ----------------------------------------------


def required_app_variables():
    read = settings_environment()
    # What points at the local services by default must point at compose's.
    local = {
        name
        for name, default in read.items()
        if isinstance(default, str)
        and ("127.0.0.1" in default or "localhost" in default)
    }
    explicit = {
        "DATABASE_URL",
        "OWNER_DATABASE_URL",
        "REPLICA_DATABASE_URL",
        "REDIS_URL",
    }
    explicit |= {"MONGO_URL", "DJANGO_SECRET_KEY", "DJANGO_ALLOWED_HOSTS"}
    assert explicit <= set(read), (
        f"settings no longer read {sorted(explicit - set(read))}"
    )
    return local | explicit | {"DJANGO_SETTINGS_MODULE"}


@pytest.mark.parametrize("name", APP_SERVICES)
def test_app_services_set_what_the_settings_read(services, name):
    env = environment(services[name])
    missing = required_app_variables() - {k for k, v in env.items() if v}
    assert not missing, f"{name} does not set {sorted(missing)}"
    module = env["DJANGO_SETTINGS_MODULE"]
    assert (ROOT / (module.replace(".", "/") + ".py")).is_file(), module


def variables_the_settings_read():
    """Every variable read with env() or env_bool() in any settings module."""
    found = set()
    for path in sorted((ROOT / "shop" / "settings").glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Name)
                and node.func.id in {"env", "env_bool"}
                and node.args
                and isinstance(node.args[0], ast.Constant)
            ):
                found.add(node.args[0].value)
    return found


def variables_gunicorn_reads():
    """The variables scripts/gunicorn.conf.py reads with os.environ.get()."""
    return set(
        re.findall(r"""os\.environ\.get\(\s*["'](\w+)["']""", GUNICORN_CONF.read_text())
    )


@pytest.mark.parametrize("name", APP_SERVICES)
def test_app_services_set_no_variable_the_settings_ignore(services, name):
    """A variable nothing reads promises what the app does not do (REDIS_REQUIRED)."""
    read = variables_the_settings_read() | {"DJANGO_SETTINGS_MODULE"}
    # One environment for every app service: web's gunicorn reads these.
    read |= variables_gunicorn_reads()
    ignored = set(environment(services[name])) - read
    assert not ignored, f"{name} sets {sorted(ignored)}, which no setting reads"


@pytest.mark.parametrize("name", APP_SERVICES)
def test_urls_name_compose_services_on_their_own_ports(services, name):
    for variable, value in environment(services[name]).items():
        if not variable.endswith("_URL"):
            continue
        url = urlparse(value)
        assert url.hostname in services, (
            f"{name}: {variable} names {url.hostname}, not a service"
        )
        port = image_port(services[url.hostname])
        if port is not None:
            assert (url.port or port) == port, (
                f"{name}: {variable} uses port {url.port}; inside the network "
                f"{url.hostname} listens on {port} (published ports are for the host)"
            )


def test_database_urls_use_the_roles_and_database_the_primary_creates(services):
    env = environment(services["web"])
    primary_env = environment(services["primary"])
    expected = {
        "DATABASE_URL": ("primary", "shop_app", primary_env["SHOP_APP_PASSWORD"]),
        "OWNER_DATABASE_URL": (
            "primary",
            "shop_owner",
            primary_env["SHOP_OWNER_PASSWORD"],
        ),
        "REPLICA_DATABASE_URL": (
            "replica",
            "shop_app",
            primary_env["SHOP_APP_PASSWORD"],
        ),
    }
    for variable, (host, user, password) in expected.items():
        url = urlparse(env[variable])
        assert (url.hostname, url.username, unquote(url.password or "")) == (
            host,
            user,
            password,
        ), variable
        assert url.path.lstrip("/") == primary_env["SHOP_DB_NAME"], variable


def test_worker_and_beat_run_the_shop_celery_app(services):
    assert re.search(
        r"""Celery\(\s*["']shop["']""", (ROOT / "shop" / "celery.py").read_text()
    )
    for name, role in (("worker", "worker"), ("beat", "beat")):
        argv = as_argv(services[name]["command"])
        assert argv[:4] == ["celery", "-A", "shop", role], argv


def test_web_migrates_as_owner_seeds_and_serves_on_8000(services):
    web = services["web"]
    published = [
        str(port).split("/")[0].split(":")[-2:] for port in web.get("ports", [])
    ]
    assert ["8000", "8000"] in published, "web must publish its port 8000 as 8000"
    script = shell_text(script_of(web, "command"))
    assert "manage.py migrate --database owner --noinput" in script
    assert "manage.py seed --scale small --if-empty" in script
    # gunicorn with the repository's configuration, never runserver; last,
    # after the schema is migrated, and exec'd so Docker's SIGTERM reaches it.
    assert "runserver" not in script
    serve = script.strip().splitlines()[-1]
    argv = shlex.split(serve)
    assert argv[:2] == ["exec", "gunicorn"], serve
    config = argv[argv.index("--config") + 1]
    assert host_path(web, str(workdir_of(web) / config)) == GUNICORN_CONF
    assert argv[argv.index("--bind") + 1] == "0.0.0.0:8000"
    hosts = environment(web)["DJANGO_ALLOWED_HOSTS"].split(",")
    assert {"localhost", "127.0.0.1"} <= set(hosts)


def test_postgres_ports_match_the_local_defaults(services):
    defaults = settings_environment()
    for name, variable in (
        ("primary", "DATABASE_URL"),
        ("replica", "REPLICA_DATABASE_URL"),
    ):
        local_port = urlparse(defaults[variable]).port
        published = [
            interpolate(str(p)).split(":")[-2] for p in services[name]["ports"]
        ]
        assert str(local_port) in published, f"{name} is not published on {local_port}"


# --- primary and replica ---------------------------------------------------


def test_the_primary_can_feed_a_streaming_replica(services):
    settings = postgres_settings(services["primary"])
    assert settings.get("wal_level") in {"replica", "logical"}
    assert int(settings.get("max_wal_senders", 10)) > 0
    assert int(settings.get("max_replication_slots", 10)) > 0


def test_the_primary_init_script_makes_roles_and_database(services):
    primary = services["primary"]
    init_scripts = [
        (ROOT / source).resolve()
        for kind, source, target in mounts(primary)
        if kind == "bind" and target.startswith("/docker-entrypoint-initdb.d/")
    ]
    assert init_scripts, "nothing is mounted into /docker-entrypoint-initdb.d"
    script = init_scripts[0]
    # A .sh file without the x bit is sourced into the image's entrypoint
    # instead of run, and our `set -u` would leak into it.
    assert script.suffix == ".sh" and script.stat().st_mode & 0o111
    text = shell_text(script)

    # Every psql variable roles.sql reads (:'name') is passed with -v name=.
    roles_sql = (ROOT / "scripts" / "sql" / "roles.sql").read_text()
    wanted = set(re.findall(r":'(\w+)'", roles_sql))
    passed = set(re.findall(r"-v\s+(\w+)=", text))
    assert wanted and wanted <= passed, (
        f"not passed to roles.sql: {sorted(wanted - passed)}"
    )
    assert "roles.sql" in text and "database.sql" in text
    assert re.search(r"OWNER\s+shop_owner|-O\s+shop_owner|--owner[= ]shop_owner", text)
    assert re.search(r"host\s+replication\s+shop_replicator\s", text), "no pg_hba line"

    # The mounted SQL directory the script reads is really mounted.
    sql_dir = re.search(r'SQL_DIR="\$\{\w+:-([^}]+)\}"', text)
    assert sql_dir and host_path(primary, sql_dir[1] + "/roles.sql").is_file()


@pytest.mark.parametrize("name", ["primary", "replica", "pgbouncer"])
def test_passwords_the_scripts_read_are_set_by_compose(services, name):
    service = services[name]
    env = environment(service)
    scripts = [script_of(service, "entrypoint")]
    scripts += [
        (ROOT / source).resolve()
        for kind, source, target in mounts(service)
        if kind == "bind" and target.startswith("/docker-entrypoint-initdb.d/")
    ]
    for script in scripts:
        for variable in re.findall(r"\$\{?(SHOP_\w+_PASSWORD)", script.read_text()):
            assert env.get(variable), f"{name}: {script.name} reads {variable}, not set"


def test_the_replica_streams_through_a_replication_slot(services):
    replica = services["replica"]
    text = shell_text(script_of(replica, "entrypoint"))
    # Lines that run it (`[wrapper] pg_basebackup ...`), not messages naming it.
    commands = [
        line
        for line in text.splitlines()
        if re.match(r"\s*(?:[\w-]+\s+)*pg_basebackup\s", line)
    ]
    assert commands, "the replica's entrypoint never runs pg_basebackup"
    argv = shlex.split(commands[-1])
    assert "-R" in argv, "without -R the copy does not start as a standby"
    assert "-X" in argv and argv[argv.index("-X") + 1] == "stream"
    assert "-S" in argv or "primary_slot_name" in postgres_settings(replica)
    assert "-C" in argv, "-S names a slot; -C creates it"
    assert re.search(r"-h\s+\"?\$\{?PRIMARY_HOST", commands[-1])
    assert environment(replica).get("SHOP_PRIMARY_HOST") in services


def test_the_replica_is_not_configured_below_the_primary(services):
    primary = postgres_settings(services["primary"])
    replica = postgres_settings(services["replica"])
    for setting in STANDBY_MINIMUMS:
        if setting in primary:
            assert setting in replica, f"replica must set {setting} (primary sets it)"
            assert int(replica[setting]) >= int(primary[setting]), setting
    assert replica.get("hot_standby", "on") == "on"


def test_named_volumes_are_declared_and_used(compose, services):
    declared = set(compose.get("volumes") or {})
    used = {
        source
        for service in services.values()
        for kind, source, _ in mounts(service)
        if kind == "volume"
    }
    assert used <= declared, f"undeclared volumes: {sorted(used - declared)}"
    assert declared <= used, f"declared but unused: {sorted(declared - used)}"
    for name in ("primary", "replica"):
        targets = {t for kind, _, t in mounts(services[name]) if kind == "volume"}
        assert "/var/lib/postgresql/data" in targets, (
            f"{name} keeps its data in no volume"
        )


def logging_conf() -> dict:
    """scripts/pg/logging.conf, the local primary's logging."""
    return pg_conf("logging.conf")


def test_the_primary_logs_as_the_local_one(services):
    """pgBadger's settings, and above all no parameters in the log (chapter 24)."""
    assert logging_conf(), "scripts/pg/logging.conf holds no setting"
    assert postgres_settings(services["primary"]).items() >= logging_conf().items()


@pytest.mark.parametrize("name", ["primary", "replica"])
def test_both_servers_have_the_local_memory(services, name):
    """shared_buffers and effective_cache_size as scripts/pg/memory.conf sets them."""
    memory = pg_conf("memory.conf")
    assert "shared_buffers" in memory
    assert postgres_settings(services[name]).items() >= memory.items()


def test_the_wal_archive_is_on_a_volume(services):
    primary = services["primary"]
    command = postgres_settings(primary).get("archive_command")
    if not command or postgres_settings(primary).get("archive_mode", "off") == "off":
        pytest.skip("WAL archiving is off")
    directory = re.search(r"cp %p (\S+)/%f", command)
    assert directory, command
    volumes = {t for kind, _, t in mounts(primary) if kind == "volume"}
    assert directory[1] in volumes, f"{directory[1]} is not on a named volume"


# --- pgbouncer ---------------------------------------------------------------
# Its settings are written by its entrypoint at start, from the service's
# environment; the script runs here with `true` in place of pgbouncer, which
# writes the files and starts nothing. tests/shop/test_compose_pgbouncer.py
# starts the real pgbouncer with them.

# libpq's sslmode values that connect without TLS when the other side has none.
PLAINTEXT_ALLOWED = {"disable", "allow", "prefer"}
SERVICES_SH = ROOT / "scripts" / "services.sh"
# Keys of pgbouncer.ini that differ between the two set-ups on purpose: where
# it listens and keeps its files, and TLS (see test_pgbouncers_tls_...).
SET_UP_SPECIFIC = {
    "listen_addr",
    "listen_port",
    "unix_socket_dir",
    "pidfile",
    "logfile",
    "auth_file",
}


@pytest.fixture(scope="module")
def pgbouncer_files(services, tmp_path_factory):
    """(pgbouncer.ini parsed, userlist.txt's lines) as the service writes them."""
    service = services["pgbouncer"]
    directory = tmp_path_factory.mktemp("pgbouncer")
    done = subprocess.run(
        ["bash", str(script_of(service, "entrypoint"))],
        env={
            "PATH": os.environ["PATH"],
            **environment(service),
            "SHOP_PGBOUNCER_DIR": str(directory),
            "SHOP_PGBOUNCER_BIN": "true",
        },
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    ini = configparser.ConfigParser(interpolation=None, comment_prefixes=(";",))
    ini.read(directory / "pgbouncer.ini")
    users = (directory / "userlist.txt").read_text().splitlines()
    return ini, users


@pytest.fixture(scope="module")
def pgbouncer_ini(pgbouncer_files):
    return pgbouncer_files[0]


def app_sslmode(env):
    """DB_SSLMODE as shop/settings/base.py decides it inside an app container.

    The image has no var/pg/tls/ca.crt (.dockerignore drops var/), so without
    DB_SSLROOTCERT there is no CA to verify against.
    """
    default = "verify-full" if env.get("DB_SSLROOTCERT") else "prefer"
    return env.get("DB_SSLMODE") or default


def test_pgbouncer_pools_transactions_in_front_of_the_primary(services, pgbouncer_ini):
    upstream = dict(
        item.split("=", 1) for item in pgbouncer_ini["databases"]["*"].split()
    )
    assert upstream["host"] == "primary"
    assert int(upstream["port"]) == image_port(services["primary"])
    assert pgbouncer_ini["pgbouncer"]["pool_mode"] == "transaction"
    assert depends_on(services["pgbouncer"]) == {"primary": "service_healthy"}


@pytest.mark.parametrize("name", APP_SERVICES)
def test_the_app_reaches_the_primary_through_pgbouncer(services, pgbouncer_ini, name):
    env = environment(services[name])
    listens = pgbouncer_ini["pgbouncer"]

    assert env.get("DATABASE_VIA_PGBOUNCER", "").lower() in {"1", "true", "yes", "on"}
    assert env["PGBOUNCER_HOST"] == "pgbouncer"
    assert int(env["PGBOUNCER_PORT"]) == int(listens["listen_port"])
    assert listens["listen_addr"] in {"*", "0.0.0.0"}, "unreachable from the network"
    # The settings' connection budget counts with pgbouncer's real sizes.
    assert int(env["PGBOUNCER_POOL_SIZE"]) == int(listens["default_pool_size"])
    assert int(env["PGBOUNCER_MAX_CLIENT_CONN"]) == int(listens["max_client_conn"])


def test_pgbouncer_is_published_on_the_local_port(services, pgbouncer_ini):
    local_port = settings_environment()["PGBOUNCER_PORT"]
    published = [
        interpolate(str(port)).split(":") for port in services["pgbouncer"]["ports"]
    ]
    assert published == [
        ["127.0.0.1", local_port, pgbouncer_ini["pgbouncer"]["listen_port"]]
    ], "publish it on the host's loopback only, on the local set-up's port"


def test_pgbouncer_knows_the_password_the_primary_gave_shop_app(
    services, pgbouncer_files
):
    _, users = pgbouncer_files
    password = environment(services["primary"])["SHOP_APP_PASSWORD"]

    assert f'"shop_app" "{password}"' in users
    url = urlparse(environment(services["web"])["DATABASE_URL"])
    assert unquote(url.password or "") == password


def test_pgbouncer_is_healthy_once_a_client_gets_through_to_the_primary(
    services, pgbouncer_ini
):
    pgbouncer = services["pgbouncer"]
    kind, command = pgbouncer["healthcheck"]["test"]
    command = interpolate(command)
    assert kind == "CMD-SHELL"
    assert f"-p {pgbouncer_ini['pgbouncer']['listen_port']} " in command
    assert "-U shop_app " in command and "SELECT 1" in command
    for variable in re.findall(r"\$\{?(\w+)", command):
        assert environment(pgbouncer).get(variable), f"the check reads {variable}"


def test_pgbouncers_tls_is_what_each_side_can_do_or_its_absence_says_why(
    services, pgbouncer_ini
):
    listens = pgbouncer_ini["pgbouncer"]
    client_mode = listens.get("client_tls_sslmode", "disable")
    if client_mode in PLAINTEXT_ALLOWED:
        # The app must accept a plaintext connection, and the reason must be
        # written beside the setting.
        for name in APP_SERVICES:
            assert app_sslmode(environment(services[name])) in PLAINTEXT_ALLOWED
        script = script_of(services["pgbouncer"], "entrypoint").read_text()
        lines = script.splitlines()
        at = next(i for i, line in enumerate(lines) if "client_tls_sslmode" in line)
        reason = []
        for line in reversed(lines[:at]):
            if not line.startswith(";"):
                break
            reason.append(line)
        assert "plaintext" in " ".join(reason).lower(), "say why it is plaintext"
    else:
        assert listens.get("client_tls_cert_file") and listens.get(
            "client_tls_key_file"
        )
        for name in APP_SERVICES:
            assert app_sslmode(environment(services[name])) not in PLAINTEXT_ALLOWED
    # pgbouncer must be able to log in to the primary as it is configured.
    if postgres_settings(services["primary"]).get("ssl", "off") == "off":
        assert listens.get("server_tls_sslmode", "disable") in PLAINTEXT_ALLOWED


def literal_settings_of_the_local_pgbouncer():
    """`key = value` lines of services.sh's pgbouncer.ini with no variable in them."""
    text = SERVICES_SH.read_text()
    body = re.search(r"^pgbouncer_ini\(\).*?<<INI\n(.*?)^INI$", text, re.M | re.S)
    assert body, "scripts/services.sh: pgbouncer_ini's heredoc not found"
    found = {}
    for line in body[1].splitlines():
        match = re.match(r"^(\w+) = ([^$]*)$", line)
        if match:
            found[match[1]] = match[2].strip()
    return found


def test_pgbouncer_pools_as_the_local_set_up_does(pgbouncer_ini):
    local = literal_settings_of_the_local_pgbouncer()
    compose = dict(pgbouncer_ini["pgbouncer"])
    assert {"pool_mode", "query_wait_timeout", "auth_type"} <= set(local)

    shared = {
        key
        for key in set(local) & set(compose)
        if key not in SET_UP_SPECIFIC and "tls" not in key
    }
    assert {key: compose[key] for key in shared} == {key: local[key] for key in shared}
    missing = set(local) - set(compose) - SET_UP_SPECIFIC
    assert not {key for key in missing if "tls" not in key}, "set them in compose too"
    # The sizes come from variables in both: the settings' defaults.
    defaults = settings_environment()
    assert compose["default_pool_size"] == defaults["PGBOUNCER_POOL_SIZE"]
    assert compose["max_client_conn"] == defaults["PGBOUNCER_MAX_CLIENT_CONN"]


# --- the scripts themselves ---------------------------------------------------


SCRIPTS = sorted(DOCKER_SCRIPTS.glob("*.sh"))


def test_there_are_scripts():
    assert SCRIPTS


@pytest.mark.parametrize("script", SCRIPTS, ids=lambda p: p.name)
def test_scripts_are_executable_and_parse(script):
    assert script.stat().st_mode & 0o111, f"{script} is not executable"
    shebang = script.read_text().splitlines()[0]
    assert shebang in {"#!/bin/sh", "#!/bin/bash", "#!/usr/bin/env bash"}, shebang
    shells = ["bash"] + (["sh"] if shebang == "#!/bin/sh" else [])
    for shell in shells:
        if shutil.which(shell) is None:
            pytest.skip(f"no {shell} on this machine")
        result = subprocess.run(
            [shell, "-n", str(script)], capture_output=True, text=True, check=False
        )
        assert result.returncode == 0, f"{shell} -n {script.name}: {result.stderr}"


# --- the file as compose reads it ---------------------------------------------

# The Compose Specification's JSON schema, the one `docker compose` validates
# a file against: schema/compose-spec.json of github.com/compose-spec/compose-spec
# at commit 170098ba07d9f53c383a41bfd4c5166b0a4529a6 (2026-06-23), Apache-2.0,
# copied unchanged. Replace the file to follow a newer specification.
COMPOSE_SPEC = Path(__file__).with_name("compose_spec.json")


def interpolated(node):
    """The whole file with every string interpolated as compose would."""
    if isinstance(node, str):
        return interpolate(node)
    if isinstance(node, dict):
        return {key: interpolated(value) for key, value in node.items()}
    if isinstance(node, list):
        return [interpolated(item) for item in node]
    return node


def compose_spec_errors(document):
    schema = json.loads(COMPOSE_SPEC.read_text())
    validator = jsonschema.Draft7Validator(schema)
    return [
        f"{'/'.join(map(str, error.absolute_path))}: {error.message}"
        for error in validator.iter_errors(document)
    ]


def test_the_file_is_valid_against_the_compose_specification(compose):
    assert compose_spec_errors(compose) == []
    assert compose_spec_errors(interpolated(compose)) == []


def test_the_compose_specification_check_catches_a_misspelt_key(compose):
    """The schema is strict enough to be worth running: typos are errors."""
    broken = json.loads(json.dumps(compose))
    broken["services"]["worker"]["helthcheck"] = broken["services"]["worker"].pop(
        "healthcheck"
    )
    broken["services"]["beat"]["depends_on"]["web"]["condition"] = "service_healty"
    errors = compose_spec_errors(broken)
    assert any("helthcheck" in error for error in errors), errors
    assert any("service_healty" in error for error in errors), errors


# --- production's settings, as the image runs them ------------------------------


def dockerfile_env(path):
    """The ENV instructions' NAME=value pairs."""
    found = {}
    for instruction, args in dockerfile_instructions(path):
        if instruction == "ENV":
            for word in shlex.split(args):
                name, _, value = word.partition("=")
                found[name] = value
    return found


@pytest.mark.parametrize("name", APP_SERVICES)
def test_app_services_run_production_settings_as_the_image_does(services, name):
    _, dockerfile = dockerfile_of(services[name])
    image = dockerfile_env(dockerfile)["DJANGO_SETTINGS_MODULE"]
    assert image == "shop.settings.production"
    assert environment(services[name])["DJANGO_SETTINGS_MODULE"] == image


SETTINGS_SEEN = """
import json
from django.conf import settings
import django
django.setup()
print(json.dumps({
    "SECURE_SSL_REDIRECT": settings.SECURE_SSL_REDIRECT,
    "SECURE_PROXY_SSL_HEADER": settings.SECURE_PROXY_SSL_HEADER,
    "SESSION_COOKIE_SECURE": settings.SESSION_COOKIE_SECURE,
    "SECURE_HSTS_SECONDS": settings.SECURE_HSTS_SECONDS,
    "DATABASE_THREADS": settings.DATABASE_THREADS,
    "DATABASE_PROCESSES": settings.DATABASE_PROCESSES,
    "DEBUG": settings.DEBUG,
}))
"""


def test_production_settings_start_with_the_app_services_environment(services):
    """Secrets, Redis, the connection budget: what compose gives is accepted.

    The settings connect to nothing at import, so the hosts need not resolve.
    """
    env = environment(services["web"])
    done = subprocess.run(
        [sys.executable, "-c", SETTINGS_SEEN],
        cwd=ROOT,
        env={"PATH": os.environ["PATH"], **env},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    seen = json.loads(done.stdout.splitlines()[-1])
    # Plain http on 127.0.0.1:8000 with no TLS in front (the header comment).
    assert seen["SECURE_SSL_REDIRECT"] is False
    assert seen["SESSION_COOKIE_SECURE"] is False
    assert seen["SECURE_PROXY_SSL_HEADER"] is None
    assert seen["SECURE_HSTS_SECONDS"] > 0  # sent over https only
    assert seen["DEBUG"] is False


def celery_concurrency(service):
    argv = as_argv(service["command"])
    assert "--concurrency" in argv, "without it Celery starts a process per core"
    return int(argv[argv.index("--concurrency") + 1])


def test_the_connection_budget_counts_every_process_of_the_stack(services):
    """DATABASE_PROCESSES is the stack's processes, in every container alike."""
    env = environment(services["web"])
    for name in APP_SERVICES:
        assert environment(services[name]) == env, f"{name}: another environment"
    processes = (
        int(env["GUNICORN_WORKERS"])
        + celery_concurrency(services["worker"])
        + 1  # beat
        + 1  # cache-listen
    )
    assert int(env["DATABASE_PROCESSES"]) >= processes
    assert int(env["DATABASE_THREADS"]) >= int(env["GUNICORN_THREADS"])


# --- worker, beat and cache-listen health ----------------------------------------


def test_worker_and_beat_wait_for_a_ready_web(services):
    """The web is ready only after migrating: tasks never meet an old schema."""
    for name in ("worker", "beat", "cache-listen"):
        assert depends_on(services[name]).get("web") == "service_healthy", name
        assert depends_on(services[name]).get("redis") == "service_healthy", name


def worker_check(services):
    kind, command = services["worker"]["healthcheck"]["test"]
    assert kind == "CMD-SHELL"
    return interpolate(command)


def test_the_worker_is_healthy_when_its_own_node_answers_a_ping(services):
    argv = shlex.split(worker_check(services))
    assert argv[:5] == ["celery", "-A", "shop", "inspect", "ping"], argv
    # Its own node only: celery@ the container's hostname, Celery's default
    # node name (%h), not any worker that happens to answer.
    assert argv[argv.index("--destination") + 1] == "celery@$HOSTNAME"
    assert "-n" not in as_argv(services["worker"]["command"])
    # Celery's own wait ends before Docker's, leaving the app's import time.
    wait = float(argv[argv.index("--timeout") + 1])
    assert wait + 10 <= seconds(services["worker"]["healthcheck"]["timeout"])


def test_the_workers_check_fails_when_no_worker_answers(services):
    """Run for real against Redis, with no worker named as the check names it."""
    env = {
        **os.environ,
        "HOSTNAME": "no-such-worker-here",
        # A database of its own on the local Redis: nothing listens there.
        "CELERY_BROKER_URL": "redis://127.0.0.1:6379/10",
    }
    env.pop("DJANGO_SETTINGS_MODULE", None)
    command = worker_check(services).replace("--timeout 10", "--timeout 1")
    celery = str(Path(sys.executable).with_name("celery"))
    done = subprocess.run(
        ["sh", "-c", command.replace("celery ", f"{celery} ", 1)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode != 0
    assert "No nodes replied" in done.stdout + done.stderr


def beat_schedule_path(services):
    argv = as_argv(services["beat"]["command"])
    return PurePosixPath(argv[argv.index("--schedule") + 1])


def run_beat_check(services, workdir):
    kind, command = services["beat"]["healthcheck"]["test"]
    assert kind == "CMD-SHELL"
    return subprocess.run(
        ["sh", "-c", interpolate(command)], cwd=workdir, check=False, timeout=30
    ).returncode


def test_beat_is_healthy_while_its_schedule_file_is_fresh(services, tmp_path):
    """The check, run in a copy of the container's working directory."""
    schedule = beat_schedule_path(services)
    assert host_path(services["beat"], str(workdir_of(services["beat"]) / schedule))
    (tmp_path / schedule.parent).mkdir(parents=True)
    assert run_beat_check(services, tmp_path) != 0, "no file yet: not healthy"

    # dbm.gnu writes the name as given, dbm.dumb adds .dat, .dir and .bak.
    for suffix in ("", ".dat"):
        written = tmp_path / f"{schedule}{suffix}"
        written.write_bytes(b"schedule")
        assert run_beat_check(services, tmp_path) == 0, suffix
        stale = time.time() - 6 * 60
        os.utime(written, (stale, stale))
        assert run_beat_check(services, tmp_path) != 0, suffix
        written.unlink()


def test_beats_check_allows_for_how_often_beat_writes_its_file(services):
    """Beat syncs after the first task sent sync_every seconds after the last."""
    kind, command = services["beat"]["healthcheck"]["test"]
    minutes = re.search(r"-mmin -(\d+)", command)
    assert minutes, command
    shortest = min(
        float(entry["schedule"])
        for entry in django_settings.CELERY_BEAT_SCHEDULE.values()
    )
    assert int(minutes[1]) * 60 > Scheduler.sync_every + shortest
    # The check looks where beat writes.
    schedule = beat_schedule_path(services)
    assert f"find {schedule.parent} " in command
    assert f"-name '{schedule.name}*'" in command
