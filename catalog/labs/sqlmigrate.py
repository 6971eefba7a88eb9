"""Lab `sqlmigrate` (04): the DDL of catalog's migrations as sqlmigrate prints
it, next to the named constraints the database holds.
"""

import io

from django.core.management import call_command

from catalog.models import StockLevel
from shop.lab import Narrator, lab


@lab(
    "sqlmigrate",
    chapter="04",
    summary="The DDL a migration runs, with its named constraints, via sqlmigrate",
)
def sqlmigrate(n: Narrator) -> None:
    n.step("The DDL of catalog 0001, as sqlmigrate prints it")
    n.say('    call_command("sqlmigrate", "catalog", "0001", database="owner")')
    ddl = _sqlmigrate("catalog", "0001")
    lines = ddl.splitlines()
    # Each statement with the comment that names its operation; the bare
    # `--` lines around those comments are dropped.
    stock_part = [
        line
        for line in lines
        if '"catalog_stock_level"' in line or "model stocklevel" in line.lower()
    ]
    n.show_sql("\n".join(stock_part), label="the stock-level part")
    n.expect(
        lines[0] == "BEGIN;" and lines[-1] == "COMMIT;",
        "the migration runs in one transaction (BEGIN; ... COMMIT;)",
    )
    names = [constraint.name for constraint in StockLevel._meta.constraints]
    missing = [name for name in names if f'"{name}"' not in ddl]
    n.expect(
        not missing,
        f"each of StockLevel's named constraints is in the DDL: {', '.join(names)}",
    )
    n.expect(
        'ADD CONSTRAINT "catalog_stock_reserved_within_on_hand" '
        'CHECK ("reserved" <= ("quantity_on_hand"))' in ddl,
        "Q(reserved__lte=F('quantity_on_hand')) became "
        'CHECK ("reserved" <= ("quantity_on_hand"))',
    )

    n.step("What the database holds now, under the same names")
    rows = n.sql(
        "SELECT conname, pg_get_constraintdef(oid) AS definition "
        "FROM pg_constraint WHERE conrelid = %s::regclass AND conname = ANY(%s) "
        "ORDER BY conname",
        ["catalog_stock_level", names],
    )
    n.expect(
        sorted(name for name, _ in rows) == sorted(names),
        "every named constraint exists in the database",
    )

    n.step("Why 0002 exists: 0001's foreign keys have no ON DELETE")
    n.say('    call_command("sqlmigrate", "catalog", "0002", database="owner")')
    redeclared = [
        line
        for line in _sqlmigrate("catalog", "0002").splitlines()
        if line.startswith('ALTER TABLE "catalog_stock_level"')
    ]
    n.show_sql("\n".join(redeclared), label="the stock-level part")
    n.expect(
        not any("ON DELETE" in line for line in stock_part)
        and any("ON DELETE CASCADE" in line for line in redeclared),
        "0001 declares the keys without ON DELETE (Django emulates it in "
        "Python); 0002 puts CASCADE and RESTRICT in the database",
    )


def _sqlmigrate(app_label: str, name: str) -> str:
    out = io.StringIO()
    call_command("sqlmigrate", app_label, name, database="owner", stdout=out)
    return out.getvalue().strip()
