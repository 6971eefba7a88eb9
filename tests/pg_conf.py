"""The settings files scripts/services.sh includes from the local clusters'
postgresql.conf (scripts/pg/), read as {name: value}: what compose must
repeat (tests/shop/test_compose.py) and what the running servers must have
(tests/shop/test_server_memory.py)."""

from pathlib import Path

PG_CONF_DIR = Path(__file__).resolve().parent.parent / "scripts" / "pg"


def pg_conf(filename: str) -> dict:
    """{name: value} of scripts/pg/FILENAME."""
    conf = {}
    for line in (PG_CONF_DIR / filename).read_text().splitlines():
        # No value there holds a '#'; quotes keep the prefix's trailing space.
        line = line.split("#", 1)[0].strip()
        if "=" in line:
            name, value = (part.strip() for part in line.split("=", 1))
            conf[name] = value.strip("'")
    return conf
