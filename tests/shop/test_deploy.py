"""The production deploy: the locks, the image's recipe, gunicorn serving the app.

No Docker engine runs the suite, so the image is checked by reading its
Dockerfile and by running here what it runs: the build's collectstatic with
only the image's environment, gunicorn with scripts/gunicorn.conf.py on
production's settings, the worker's and cache-listen's healthchecks against
the real services. tests/shop/test_compose.py reads docker-compose.yml.
"""

import ast
import contextlib
import http.client
import importlib.metadata
import os
import re
import shlex
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import psycopg
import pytest
import yaml
from django.conf import settings
from django.db import connections

from tests.shop.test_compose import (
    COMPOSE_FILE,
    GUNICORN_CONF,
    dockerfile_instructions,
    interpolate,
)

ROOT = Path(__file__).resolve().parents[2]
DOCKERFILE = ROOT / "Dockerfile"
RUNTIME_LOCK = ROOT / "requirements.txt"
DEV_LOCK = ROOT / "requirements-dev.txt"
LOCKS = sorted(ROOT.glob("requirements*.txt"))
FIRST_PARTY = {"shop", "catalog", "orders", "analytics"}
# Test, lint, docs, benchmark and attack tools, and the test data makers:
# none of them may reach the image.
NOT_IN_THE_IMAGE = {
    "pytest",
    "pytest-django",
    "ruff",
    "import-linter",
    "grimp",
    "mkdocs",
    "mkdocs-material",
    "locust",
    "schemathesis",
    "hypothesis",
    "sqlmap",
    "factory-boy",
    "faker",
    "mongomock",
    "pip-tools",
    "coverage",
}
# Imported by the app's code without being in the app's lock, and why.
ONLY_OUTSIDE_THE_IMAGE = {
    # MONGO_URL=mongomock:// only: the tests' and the security pass's
    # in-process event store (analytics/event_store.py).
    "mongomock",
}
SECRETS = {
    "DJANGO_SECRET_KEY": "only-for-this-test",
    "FIELD_ENCRYPTION_KEYS": "1:only-for-this-test",
}


def normalized(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def lock_entries(path: Path) -> dict[str, tuple[str, list[str]]]:
    """{name: (version, [hashes])} of a pip-compile lock."""
    text = re.sub(r"\\\n", " ", path.read_text())
    entries = {}
    for line in text.splitlines():
        line = line.split(" #", 1)[0].strip()
        if not line or line.startswith("#"):
            continue
        assert not line.startswith("-"), f"{path.name}: an option line: {line}"
        requirement, *options = line.split()
        match = re.fullmatch(r"([A-Za-z0-9._-]+)==(\S+)", requirement)
        assert match, f"{path.name}: not pinned exactly: {requirement}"
        hashes = [o.removeprefix("--hash=") for o in options if o.startswith("--hash=")]
        entries[normalized(match[1])] = (match[2], hashes)
    return entries


# --- the locks ------------------------------------------------------------------


@pytest.mark.parametrize("lock", LOCKS, ids=lambda p: p.name)
def test_every_locked_package_is_pinned_with_its_hashes(lock):
    entries = lock_entries(lock)
    assert entries, lock
    for name, (_, hashes) in entries.items():
        assert hashes, f"{lock.name}: {name} has no --hash"
        assert all(re.fullmatch(r"sha256:[0-9a-f]{64}", h) for h in hashes), name
    source = lock.with_suffix(".in")
    assert source.is_file(), f"{lock.name} is made from {source.name} (make lock)"


def test_the_runtime_lock_holds_no_test_lint_or_docs_tool():
    runtime = set(lock_entries(RUNTIME_LOCK))
    assert not runtime & NOT_IN_THE_IMAGE, sorted(runtime & NOT_IN_THE_IMAGE)
    assert {"django", "gunicorn", "celery", "whitenoise"} <= runtime


def test_the_dev_lock_is_the_runtime_lock_and_the_tools_at_the_same_versions():
    runtime, dev = lock_entries(RUNTIME_LOCK), lock_entries(DEV_LOCK)
    for name, (version, _) in runtime.items():
        assert name in dev, f"requirements-dev.txt lacks {name}"
        assert dev[name][0] == version, f"{name}: {dev[name][0]} != {version}"
    # What `make test`, `make lint` and `make docs` run.
    assert {"pytest", "pytest-django", "ruff", "import-linter", "mkdocs"} <= set(dev)


@pytest.mark.parametrize(
    "lock", ["requirements-bench.txt", "requirements-security.txt"]
)
def test_the_tool_locks_agree_with_the_dev_lock(lock):
    """Installed on top of it: a different version would change the venv."""
    dev = lock_entries(DEV_LOCK)
    for name, (version, _) in lock_entries(ROOT / lock).items():
        if name in dev:
            assert dev[name][0] == version, f"{lock}: {name} {version}"


def imports_of(path: Path):
    """(top-level module, inside a function?) for each absolute import."""
    tree = ast.parse(path.read_text())
    nested = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            nested |= {id(n) for n in ast.walk(node) if n is not node}
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0:
            names = [node.module]
        else:
            continue
        for name in names:
            yield name.split(".")[0], id(node) in nested


def test_every_package_the_app_imports_is_in_the_runtime_lock():
    """The image can run every module of the app (the labs included)."""
    runtime = set(lock_entries(RUNTIME_LOCK))
    distributions = importlib.metadata.packages_distributions()
    missing = {}
    for app in sorted(FIRST_PARTY):
        for path in sorted((ROOT / app).rglob("*.py")):
            for module, in_function in imports_of(path):
                if module in FIRST_PARTY or module in sys.stdlib_module_names:
                    continue
                if module in ONLY_OUTSIDE_THE_IMAGE:
                    assert in_function, f"{path}: imports {module} at load time"
                    continue
                names = {normalized(d) for d in distributions.get(module, [])}
                if not names & runtime:
                    missing.setdefault(module, []).append(str(path.relative_to(ROOT)))
    assert not missing, f"imported, not in requirements.txt: {missing}"


LOADED = """
import importlib, importlib.abc, importlib.metadata, pkgutil, re, sys

# As if only the runtime lock were installed: a module of any other
# distribution is missing. An optional import (whitenoise's brotli, DRF's
# markdown) falls back as it would in the image; a needed one fails.
ALLOWED = set(sys.argv[1].split(","))
OWNERS = importlib.metadata.packages_distributions()


class OnlyTheRuntimeLock(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        owners = {re.sub(r"[-_.]+", "-", d).lower() for d in OWNERS.get(name, ())}
        if owners and not owners & ALLOWED:
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)
        return None


sys.meta_path.insert(0, OnlyTheRuntimeLock())

import django
django.setup()
from django.core.management import get_commands, load_command_class
import shop.wsgi
from shop.celery import app
from shop.lab import discover
# What the worker and beat load beyond the app: the broker's transport.
app.connection_for_write().transport
for name, where in get_commands().items():
    load_command_class(where, name)
discover()
for package in ("shop", "catalog", "orders", "analytics"):
    root = importlib.import_module(package)
    for info in pkgutil.walk_packages(root.__path__, package + "."):
        importlib.import_module(info.name)
"""


def test_the_app_loads_with_only_the_runtime_lock():
    """Every module, command, lab and the broker's transport, on production.

    Catches what a dependency imports without declaring it: kombu's Redis
    transport imports `packaging`, which kombu declares only in an extra, so
    a lock made from the declarations alone left it out, and the image's
    worker and beat could not start.
    """
    environment = {
        k: v for k, v in os.environ.items() if not k.startswith(("DJANGO_", "SHOP_"))
    }
    done = subprocess.run(
        [sys.executable, "-c", LOADED, ",".join(lock_entries(RUNTIME_LOCK))],
        cwd=ROOT,
        env={
            **environment,
            **SECRETS,
            "DJANGO_SETTINGS_MODULE": "shop.settings.production",
            "CELERY_BROKER_URL": "redis://127.0.0.1:6379/10",
        },
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]


# --- the image's recipe ---------------------------------------------------------


@pytest.fixture(scope="module")
def instructions():
    return dockerfile_instructions(DOCKERFILE)


def run_lines(instructions):
    return [args for instruction, args in instructions if instruction == "RUN"]


def test_the_image_installs_the_runtime_lock_only_with_hashes(instructions):
    installs = [line for line in run_lines(instructions) if "pip install" in line]
    assert len(installs) == 1, installs
    argv = shlex.split(installs[0])
    assert argv[argv.index("install") + 1 :] == [
        "--require-hashes",
        "-r",
        "requirements.txt",
    ], argv
    # Copied on its own before the code, and no other lock is copied.
    copies = [args for instruction, args in instructions if instruction == "COPY"]
    assert copies[0].split() == ["requirements.txt", "./"]
    assert copies[1:] == [". ."]


def test_the_image_runs_production_settings(instructions):
    env = {}
    for instruction, args in instructions:
        if instruction == "ENV":
            env.update(word.partition("=")[::2] for word in shlex.split(args))
    assert env["DJANGO_SETTINGS_MODULE"] == "shop.settings.production"
    # The build's placeholders stay on their RUN line, out of the image.
    assert not {"DJANGO_SECRET_KEY", "FIELD_ENCRYPTION_KEYS"} & set(env)
    cmd = [args for instruction, args in instructions if instruction == "CMD"]
    assert cmd and "/app/scripts/docker/web-start.sh" in cmd[-1]


def test_manage_py_still_defaults_to_local_settings_outside_the_image():
    for path in ("manage.py", "shop/wsgi.py", "shop/celery.py"):
        text = (ROOT / path).read_text()
        assert (
            'os.environ.setdefault("DJANGO_SETTINGS_MODULE", "shop.settings.local")'
            in text
        ), path


def collectstatic_line(instructions):
    found = [line for line in run_lines(instructions) if "collectstatic" in line]
    assert len(found) == 1, found
    return found[0]


def test_the_builds_collectstatic_runs_with_only_the_images_environment(
    instructions, tmp_path
):
    """Its placeholder secrets are enough, and nothing needs a database or Redis."""
    line = collectstatic_line(instructions)
    words = shlex.split(line)
    assignments = dict(w.split("=", 1) for w in words if re.match(r"^\w+=", w))
    command = [w for w in words if not re.match(r"^\w+=", w)]
    assert command[:3] == ["python", "manage.py", "collectstatic"], command
    image_env = {}
    for instruction, args in instructions:
        if instruction == "ENV":
            image_env.update(w.partition("=")[::2] for w in shlex.split(args))
    done = subprocess.run(
        # --dry-run: the same settings and files, without writing and
        # compressing 39 MB.
        [sys.executable, *command[1:], "--dry-run"],
        cwd=ROOT,
        env={
            "PATH": os.environ["PATH"],
            **image_env,
            **assignments,
            "DJANGO_STATIC_ROOT": str(tmp_path),
        },
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert "static files copied" in done.stdout
    assert "drf_spectacular_sidecar" in done.stdout or "swagger-ui" in done.stdout


# --- gunicorn on production's settings -----------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


REDIS_URL = "redis://127.0.0.1:6379/10"  # this file's own Redis database


@contextlib.contextmanager
def gunicorn(tmp_path, name, **env):
    """gunicorn as the image starts it, on a free port of 127.0.0.1."""
    port = free_port()
    log = tmp_path / f"gunicorn-{name}.log"
    environment = {
        k: v for k, v in os.environ.items() if not k.startswith(("DJANGO_", "SHOP_"))
    }
    environment |= {
        **SECRETS,
        "DJANGO_SETTINGS_MODULE": "shop.settings.production",
        # Every alias on the test database.
        "SHOP_DATABASE": connections["owner"].settings_dict["NAME"],
        "REDIS_URL": REDIS_URL,
        "CELERY_BROKER_URL": REDIS_URL,
        "GUNICORN_WORKERS": "1",
        "GUNICORN_THREADS": "2",
        "LOG_LEVEL": "WARNING",
        **env,
    }
    with open(log, "wb") as out:
        process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "gunicorn",
                "--config",
                str(GUNICORN_CONF),
                "--bind",
                f"127.0.0.1:{port}",
            ],
            cwd=ROOT,
            env=environment,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        yield process, port, log
    finally:
        process.send_signal(signal.SIGTERM)  # graceful: its pools close
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def compose_services():
    return yaml.safe_load(COMPOSE_FILE.read_text())["services"]


def get(port, path, headers=None):
    """(status, headers, body) of one GET, redirects not followed."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        conn.request("GET", path, headers=headers or {})
        response = conn.getresponse()
        return response.status, dict(response.getheaders()), response.read()
    finally:
        conn.close()


def wait_until_serving(process, port, log, timeout=40.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(
                f"gunicorn exited with {process.returncode}:\n{log.read_text()}"
            )
        with contextlib.suppress(OSError):
            if get(port, "/livez")[0] == 200:
                return
        time.sleep(0.2)
    pytest.fail(f"gunicorn did not serve /livez within {timeout} s:\n{log.read_text()}")


HTTPS = {"X-Forwarded-Proto": "https"}


@pytest.mark.django_db(databases=["default", "owner"])
def test_gunicorn_serves_production_and_redirects_plain_http_to_https(tmp_path):
    static = tmp_path / "static"
    static.mkdir()
    (static / "deploy-probe.txt").write_text("served by whitenoise\n")
    with (
        gunicorn(tmp_path, "direct", DJANGO_STATIC_ROOT=str(static)) as direct,
        gunicorn(
            tmp_path,
            "proxied",
            DJANGO_STATIC_ROOT=str(static),
            DJANGO_TRUST_X_FORWARDED_PROTO="1",
        ) as proxied,
    ):
        wait_until_serving(*direct)
        wait_until_serving(*proxied)
        port = direct[1]

        # The probes answer over plain http, unredirected.
        assert get(port, "/livez")[0] == 200
        assert get(port, "/readyz")[0] == 200
        assert get(port, "/healthz")[0] == 200

        # Anything else is sent to https, with or without a claim of https
        # in a header nobody said to trust.
        for headers in ({}, HTTPS):
            status, answer, _ = get(port, "/api/v1/ping/", headers)
            assert status == 301, headers
            assert answer["Location"] == f"https://127.0.0.1:{port}/api/v1/ping/"
            assert "Strict-Transport-Security" not in answer

        # Behind a proxy the deployment trusts: its https is https.
        port = proxied[1]
        status, answer, body = get(port, "/api/v1/ping/", HTTPS)
        assert (status, body) == (200, b'{"ok":true}')
        assert answer["Strict-Transport-Security"] == "max-age=31536000"
        assert get(port, "/api/v1/ping/")[0] == 301
        # Static files, from STATIC_ROOT, by WhiteNoise.
        status, _, body = get(port, "/static/deploy-probe.txt", HTTPS)
        assert (status, body) == (200, b"served by whitenoise\n")


# --- worker and cache-listen healthchecks, for real -------------------------------


def celery_bin():
    return str(Path(sys.executable).with_name("celery"))


def test_the_workers_healthcheck_passes_once_its_worker_answers(tmp_path):
    """A worker named as Celery names one in a container, and the check."""
    hostname = f"deploy-test-{os.getpid()}"
    env = {
        k: v for k, v in os.environ.items() if not k.startswith(("DJANGO_", "SHOP_"))
    }
    env |= {
        **SECRETS,
        "DJANGO_SETTINGS_MODULE": "shop.settings.production",
        "REDIS_URL": REDIS_URL,
        "CELERY_BROKER_URL": REDIS_URL,
        "HOSTNAME": hostname,
        "LOG_LEVEL": "WARNING",
    }
    kind, command = compose_services()["worker"]["healthcheck"]["test"]
    check = interpolate(command).replace("celery ", f"{celery_bin()} ", 1)
    check = check.replace("--timeout 10", "--timeout 2")
    log = tmp_path / "worker.log"
    with open(log, "wb") as out:
        worker = subprocess.Popen(
            [
                celery_bin(),
                "-A",
                "shop",
                "worker",
                "--pool",
                "solo",
                # Celery's default name, %h being the machine's name: in a
                # container, its HOSTNAME.
                "-n",
                f"celery@{hostname}",
                # An empty queue of its own: it must run nothing.
                "--queues",
                f"deploy-test-{os.getpid()}",
            ],
            cwd=ROOT,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        deadline = time.monotonic() + 40
        while True:
            assert worker.poll() is None, log.read_text()
            done = subprocess.run(
                ["sh", "-c", check],
                cwd=ROOT,
                env=env,
                capture_output=True,
                text=True,
                timeout=60,
                check=False,
            )
            if done.returncode == 0:
                break
            assert time.monotonic() < deadline, done.stdout + done.stderr
        assert f"celery@{hostname}: OK" in done.stdout
        # Another container's name gets no answer from this worker.
        other = subprocess.run(
            ["sh", "-c", check],
            cwd=ROOT,
            env={**env, "HOSTNAME": f"{hostname}-other"},
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert other.returncode != 0
    finally:
        worker.send_signal(signal.SIGTERM)
        try:
            worker.wait(timeout=20)
        except subprocess.TimeoutExpired:
            worker.kill()
            worker.wait()


def run_cache_listen_check(database_url):
    kind, *argv = compose_services()["cache-listen"]["healthcheck"]["test"]
    assert kind == "CMD" and argv[:2] == ["python", "-c"]
    return subprocess.run(
        [sys.executable, "-c", argv[2]],
        env={"PATH": os.environ["PATH"], "DATABASE_URL": database_url},
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    ).returncode


@pytest.mark.django_db(databases=["default", "owner"])
def test_cache_listens_healthcheck_sees_the_listening_session():
    """Against the primary, in the test database, as compose's DATABASE_URL role."""
    params = connections["default"].get_connection_params()
    direct = settings.DATABASES["owner"]
    url = (
        f"postgresql://{params['user']}:{params['password']}@{direct['HOST']}:"
        f"{direct['PORT']}/{connections['owner'].settings_dict['NAME']}"
        f"?sslmode={params.get('sslmode', 'prefer')}"
    )
    if params.get("sslrootcert"):
        url += f"&sslrootcert={params['sslrootcert']}"
    assert run_cache_listen_check(url) != 0, "nobody listens yet"
    # What catalog/cache/listener.py does on its session.
    with psycopg.connect(url, autocommit=True) as session:
        session.execute("LISTEN catalog_changed")
        assert run_cache_listen_check(url) == 0
    assert run_cache_listen_check(url) != 0
