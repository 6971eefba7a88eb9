"""Settings read from the environment, each in a fresh interpreter.

Settings are computed once, at import; a new process is the only honest way
to see what a variable does to them.
"""

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
DUMP = (
    "import json; from shop.settings import base; "
    "print(json.dumps({alias: [c['NAME'], c['USER'], c['HOST'], c['PORT']] "
    "for alias, c in base.DATABASES.items()}))"
)


def databases(**env):
    environment = {k: v for k, v in os.environ.items() if k != "SHOP_DATABASE"}
    done = subprocess.run(
        [sys.executable, "-c", DUMP],
        cwd=ROOT,
        env={**environment, **env},
        capture_output=True,
        text=True,
        check=True,
    )
    return json.loads(done.stdout.splitlines()[-1])


def test_shop_database_renames_the_database_of_every_alias_and_nothing_else():
    default = databases()
    scratch = databases(SHOP_DATABASE="shop_security")

    assert set(scratch) == set(default)
    for alias, (name, user, host, port) in scratch.items():
        assert name == "shop_security", alias
        assert [user, host, port] == default[alias][1:], alias


def test_without_shop_database_each_alias_keeps_the_name_in_its_url():
    named = databases(DATABASE_URL="postgres://u:p@127.0.0.1:1/elsewhere")
    assert named["default"][0] == "elsewhere"
    assert named["owner"][0] == "shop"


def production(**env) -> subprocess.CompletedProcess:
    """Import the production settings in a fresh interpreter with `env` added."""
    environment = {
        k: v for k, v in os.environ.items() if k not in {"DJANGO_SETTINGS_MODULE"}
    }
    environment |= {
        "DJANGO_SECRET_KEY": "only-for-this-test",
        "FIELD_ENCRYPTION_KEYS": "1:only-for-this-test",
        **env,
    }
    return subprocess.run(
        [sys.executable, "-c", "import shop.settings.production"],
        cwd=ROOT,
        env=environment,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_production_refuses_to_start_without_redis():
    # Port 9 (discard) on loopback: nothing answers there.
    result = production(REDIS_URL="redis://127.0.0.1:9/0")
    assert result.returncode != 0
    assert "Redis is required in production" in result.stderr


def test_production_starts_with_redis_and_its_secrets():
    result = production()
    assert result.returncode == 0, result.stderr
