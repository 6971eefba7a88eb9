"""Write docs/snippets/orm/: the SQL each ORM of chapter 16 sends or prints.

Run by scripts/orm_snippets.sh, which installs the JavaScript side first.
Against the development database (DATABASE_URL and OWNER_DATABASE_URL, as
the shop reads them):

    orm/alembic-upgrade.txt       alembic upgrade head --sql (no database)
    orm/alembic-downgrade.txt     alembic downgrade 0002:0001 --sql
    orm/django-add-field-db-default.txt   sqlmigrate of the same change
    orm/django-add-field-default.txt      ... with a Python-side default
    orm/sequelize-product-list.txt        node sequelize_products.js
    orm/prisma-product-list.txt           npx tsx prisma_products.ts
    lab-sqlalchemy.txt, lab-alembic.txt   the labs' transcripts

The JavaScript scripts read the first page of the product list; a product
of the script's own (committed, then deleted) makes sure the page is not
empty, so that the statements that load its relations show too. A script
that cannot run keeps the snippet of its last run, if there is one, or
leaves one that says it was not run, with the error; either way the exit
status is 1.
"""

import io
import json
import os
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import quote

ROOT = Path(__file__).resolve().parent.parent
SNIPPETS = ROOT / "docs" / "snippets"
JS = ROOT / "orm" / "js"
TAG = "16-js"
PAGE_SIZE = 3
JS_TIMEOUT = 60


def setup_django() -> None:
    sys.path.insert(0, str(ROOT))
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "shop.settings.local")
    import django

    django.setup()


def header(command: str, versions: str) -> str:
    today = datetime.now(UTC).date().isoformat()
    return (
        f"-- Produced by scripts/orm_snippets.sh on {today} ({versions}):\n"
        f"--   {command}\n"
        "-- Do not edit: run the script again.\n\n"
    )


def write(name: str, text: str) -> None:
    path = SNIPPETS / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    print(f"wrote {path.relative_to(ROOT)}")


def migration_snippet_bodies() -> list[tuple[str, str, str]]:
    """(file name, the command it shows, the text it printed): no database
    is written to, so the text is the same on every run."""
    from catalog.labs import alembic_lab as al

    return [
        (
            "orm/alembic-upgrade.txt",
            "cd orm/alembic && alembic upgrade head --sql",
            al.alembic_offline_sql("upgrade", "head"),
        ),
        (
            "orm/alembic-downgrade.txt",
            f"cd orm/alembic && alembic downgrade {al.CHANGE}:{al.BASELINE} --sql",
            al.alembic_offline_sql("downgrade", f"{al.CHANGE}:{al.BASELINE}"),
        ),
        (
            "orm/django-add-field-db-default.txt",
            "sqlmigrate of AddField('warehouse', 'timezone', "
            "CharField(max_length=64, null=True, db_default='UTC'))",
            al.django_add_field_sql(al.TIMEZONE_DB_DEFAULT),
        ),
        (
            "orm/django-add-field-default.txt",
            "sqlmigrate of AddField('warehouse', 'timezone', "
            "CharField(max_length=64, null=True, default='UTC'))",
            al.django_add_field_sql(al.TIMEZONE_PYTHON_DEFAULT),
        ),
    ]


def migration_snippets() -> None:
    from catalog.labs.alembic_lab import tool_versions

    for name, command, body in migration_snippet_bodies():
        write(name, header(command, tool_versions()) + body + "\n")


def snippet_body(text: str) -> str:
    """A snippet without its header (which carries the date)."""
    return text.split("\n\n", 1)[1]


def lab_snippets() -> None:
    from shop import lab

    for name in ("sqlalchemy", "alembic"):
        write(f"lab-{name}.txt", lab.transcript(name))


def js_environment() -> dict[str, str]:
    """DATABASE_URL and the TLS settings of Django's default alias, for node."""
    from django.db import connections

    params = connections["default"].get_connection_params()
    env = {
        **os.environ,
        "DATABASE_URL": (
            f"postgres://{quote(params['user'], safe='')}:"
            f"{quote(params['password'], safe='')}@"
            f"{params['host']}:{params['port']}/{quote(params['dbname'], safe='')}"
        ),
        "PAGE_SIZE": str(PAGE_SIZE),
    }
    if params.get("sslrootcert"):
        env["DB_SSLROOTCERT"] = params["sslrootcert"]
    if params.get("sslmode"):
        env["DB_SSLMODE"] = params["sslmode"]
    return env


def npm_versions(*packages: str) -> str:
    lock = json.loads((JS / "package-lock.json").read_text(encoding="utf-8"))
    installed = lock["packages"]
    found = [
        f"{name} {installed[f'node_modules/{name}']['version']}" for name in packages
    ]
    node = subprocess.run(["node", "--version"], capture_output=True, text=True)
    return ", ".join([*found, f"Node {node.stdout.strip()}"])


def run_js(command: list[str], env: dict[str, str]) -> tuple[bool, str]:
    """Run one script in orm/js; (it ran, its output or why it did not)."""
    if not (JS / "node_modules").is_dir():
        return False, "orm/js/node_modules is missing: run scripts/orm_snippets.sh"
    try:
        done = subprocess.run(
            command,
            cwd=JS,
            env=env,
            capture_output=True,
            text=True,
            timeout=JS_TIMEOUT,
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        return False, str(exc)
    if done.returncode != 0:
        return False, (done.stderr or done.stdout).strip()
    return True, done.stdout.strip()


def js_snippets() -> bool:
    """Run each script and write its snippet; False if one did not run."""
    from orders.labs._common import _committed_rows, _stock_rows
    from shop.lab import Narrator

    scripts = [
        (
            "orm/sequelize-product-list.txt",
            ["node", "sequelize_products.js"],
            ("sequelize", "pg"),
        ),
        (
            "orm/prisma-product-list.txt",
            ["npx", "--no-install", "tsx", "prisma_products.ts"],
            ("prisma", "@prisma/client", "@prisma/adapter-pg", "pg"),
        ),
    ]
    quiet = Narrator(io.StringIO())
    env = js_environment()
    all_ran = True
    with _committed_rows(quiet, TAG) as cursor:
        _stock_rows(quiet, TAG, variants=2, on_hand=5, cursor=cursor)
        for name, command, packages in scripts:
            ran, output = run_js(command, env)
            shown = " ".join(command)
            if ran:
                text = header(f"cd orm/js && {shown}", npm_versions(*packages))
                write(name, text + output + "\n")
                continue
            all_ran = False
            print(f"{shown} did not run: {output}", file=sys.stderr)
            if not (SNIPPETS / name).exists():
                write(name, f"-- Not run here: {shown}\n--\n" + _commented(output))
    return all_ran


def _commented(text: str) -> str:
    return "".join(f"-- {line}".rstrip() + "\n" for line in text.splitlines())


def main() -> int:
    setup_django()
    migration_snippets()
    all_ran = js_snippets()
    lab_snippets()
    return 0 if all_ran else 1


if __name__ == "__main__":
    sys.exit(main())
