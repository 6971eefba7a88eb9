"""Lab `er-diagram` (13): the Mermaid ER diagram shop/erd.py draws from the
models matches the database's foreign keys and the committed docs copy.
"""

import difflib
import re

from django.apps import apps

from shop.lab import Narrator, lab

RELATIONSHIP = re.compile(
    r"^\s*(?P<parent>\w+) (?P<left>\|\||\|o)(?:\.\.|--)(?P<right>o\{|o\|) "
    r'(?P<child>\w+) : "(?P<field>\w+)"$'
)
CARDINALITY = {
    ("||", "o{"): "one to many",
    ("|o", "o{"): "zero-or-one to many",
    ("||", "o|"): "one to zero-or-one",
    ("|o", "o|"): "zero-or-one to zero-or-one",
}


@lab(
    "er-diagram",
    chapter="13",
    summary="The Mermaid ER diagram agrees with the models, database and docs copy",
)
def er_diagram(n: Narrator) -> None:
    from shop import erd

    n.step("The relationships, as erd.render_mermaid() draws them from the models")
    generated = erd.render_mermaid()
    found = [m for m in map(RELATIONSHIP.match, generated.splitlines()) if m]
    n.table(
        ["parent", "child", "field", "cardinality"],
        [
            (m["parent"], m["child"], m["field"], CARDINALITY[m["left"], m["right"]])
            for m in found
        ],
        limit=50,
    )
    n.expect(bool(found), f"the diagram has {len(found)} relationships")

    n.step("Each relationship is a real foreign key in the database, and vice versa")
    models = {
        model._meta.db_table: model
        for model in apps.get_models(include_auto_created=True)
    }
    drawn = [model._meta.db_table for model in erd.diagram_models()]
    in_diagram = {
        (m["parent"], m["child"], models[m["child"]]._meta.get_field(m["field"]).column)
        for m in found
    }
    rows = n.sql(
        """
        SELECT confrelid::regclass::text AS parent,
               conrelid::regclass::text AS child,
               a.attname AS column
        FROM pg_constraint AS c
        JOIN pg_attribute AS a
          ON a.attrelid = c.conrelid AND a.attnum = ANY(c.conkey)
        WHERE c.contype = 'f'
          AND c.conrelid::regclass::text = ANY(%(tables)s)
          AND c.confrelid::regclass::text = ANY(%(tables)s)
        ORDER BY 1, 2, 3
        """,
        {"tables": drawn},
        label="foreign keys between the drawn tables",
    )
    in_database = {tuple(row) for row in rows}
    n.expect(
        in_diagram == in_database,
        "the diagram's relationships and the database's foreign keys are the same "
        f"{len(in_database)} (if not: run `python manage.py migrate --database "
        "owner`)",
    )

    n.step(f"The committed copy: {erd.SNIPPET_PATH.relative_to(erd.BASE_DIR)}")
    expected = erd.render_snippet()
    committed = (
        erd.SNIPPET_PATH.read_text(encoding="utf-8")
        if erd.SNIPPET_PATH.exists()
        else ""
    )
    if committed != expected:
        diff = difflib.unified_diff(
            committed.splitlines(),
            expected.splitlines(),
            "committed",
            "generated",
            lineterm="",
        )
        for line in list(diff)[:40]:
            n.say(f"    {line}")
    n.expect(
        committed == expected,
        "the committed diagram equals the generated one (if not: run "
        "`python manage.py er_diagram` and commit docs/snippets/er-diagram.md)",
    )
