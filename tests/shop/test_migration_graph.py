"""The migration graph keeps the layers: no app's migrations wait for a higher app's.

DESIGN.md's layers are shop (with shop.accounts) at the bottom, then catalog,
orders and analytics. Each app owns its tables' SQL (policies, triggers,
grants) and builds on what the apps below it created, so a dependency may
only point down, and there can be no cycle between apps.

The layers are read from the import-linter contract in pyproject.toml, so
the imports and the migrations keep one order. The tests that need no
database run in `make lint` too (-m "not django_db"): they read the
migration files, not a database.
"""

import tomllib
from pathlib import Path

import pytest
from django.apps import apps
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connections
from django.db.migrations.loader import MigrationLoader

from shop.management.commands.migrate import OLD_LAYOUT

PYPROJECT = Path(__file__).resolve().parents[2] / "pyproject.toml"


def import_layers():
    """The packages of import-linter's layers contract, bottom first."""
    config = tomllib.loads(PYPROJECT.read_text())["tool"]["importlinter"]
    (contract,) = [c for c in config["contracts"] if c["type"] == "layers"]
    return list(reversed(contract["layers"]))


# An app's layer is its package's: shop.accounts (label "accounts") shares
# shop's, but their migrations still may not wait for each other both ways.
LAYER_OF = {
    config.label: level
    for level, package in enumerate(import_layers())
    for config in apps.get_app_configs()
    if config.name.split(".")[0] == package
}
OURS = set(LAYER_OF)


def test_every_app_of_the_project_is_in_a_layer():
    project = PYPROJECT.parent
    ours = {
        config.label
        for config in apps.get_app_configs()
        if (project / config.name.split(".")[0]).is_dir()
    }
    assert ours == OURS, "an app outside pyproject.toml's import-linter layers"
    assert LAYER_OF["shop"] == LAYER_OF["accounts"] < LAYER_OF["catalog"]
    assert LAYER_OF["catalog"] < LAYER_OF["orders"] < LAYER_OF["analytics"]


def app_edges():
    """(app, app it waits for, directly or not) between the project's apps.

    Transitive, so a path through a third-party app counts and a cycle of any
    length shows as a pair in both directions. accounts' migrations wait for
    authtoken's, which wait for accounts' first one (AUTH_USER_MODEL): that
    path leads back to the same app and is not an edge between apps.
    """
    graph = MigrationLoader(None, ignore_no_migrations=True).graph
    reach = {}
    for (app, _), node in graph.node_map.items():
        reach.setdefault(app, set()).update(
            parent.key[0] for parent in node.parents if parent.key[0] != app
        )
    changed = True
    while changed:
        changed = False
        for parents in reach.values():
            for parent in list(parents):
                new = reach.get(parent, set()) - parents
                if new:
                    parents |= new
                    changed = True
    return {
        (app, parent)
        for app, parents in reach.items()
        if app in OURS
        for parent in parents
        if parent in OURS and parent != app
    }


def test_migrations_depend_only_on_lower_layers():
    upward = sorted(
        (app, parent) for app, parent in app_edges() if LAYER_OF[parent] > LAYER_OF[app]
    )
    assert not upward, f"migrations that wait for a higher layer: {upward}"


def test_no_cycle_between_apps():
    edges = app_edges()
    cycles = sorted((a, b) for a, b in edges if (b, a) in edges and a < b)
    assert not cycles, f"apps whose migrations wait for each other: {cycles}"


def test_shop_migrations_depend_on_no_app_of_the_shop():
    assert not {parent for app, parent in app_edges() if app == "shop"}


@pytest.mark.django_db(databases=["owner"])
def test_migrate_refuses_a_database_of_the_old_layout():
    app, name = sorted(OLD_LAYOUT)[0]
    with connections["owner"].cursor() as cursor:
        cursor.execute(
            "INSERT INTO django_migrations (app, name, applied) VALUES (%s, %s, now())",
            [app, name],
        )
    with pytest.raises(CommandError, match="rebuild it"):
        call_command("migrate", database="owner", verbosity=0)
