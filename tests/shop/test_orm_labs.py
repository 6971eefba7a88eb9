"""The other ORMs of chapter 16 against the shop's own code and tables.

SQLAlchemy's slice of the shop (orders/labs/sqlalchemy_shop.py) maps real
columns, returns the page and locks the rows Django does, and its
conditional UPDATE holds under a race. Alembic's revisions (orm/alembic/)
still print what docs/snippets/orm/ shows. Sequelize and Prisma (orm/js/)
return Django's page, in the number of statements the chapter says; they
run only where orm/js is installed (scripts/orm_snippets.sh), and are
skipped with the reason otherwise. The labs themselves run in
tests/shop/test_labs.py, with every other lab.
"""

import importlib.util
import json
import subprocess
from dataclasses import astuple
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pytest
from alembic.script import ScriptDirectory
from django.apps import apps
from django.db import connections
from sqlalchemy.dialects import postgresql
from sqlalchemy.orm import Session

from catalog import selectors
from catalog.labs import alembic_lab
from orders import locks
from orders.labs import sqlalchemy_shop as shop_sa
from shop.db_context import staff_transaction
from tests.catalog.factories import (
    ProductFactory,
    StockLevelFactory,
    VariantFactory,
    WarehouseFactory,
)
from tests.concurrency import run_concurrently
from tests.dbs import ALL_DATABASES
from tests.shop.test_docs import CODE_SPAN, prose_lines, reference_problem

ROOT = Path(__file__).resolve().parents[2]
JS = ROOT / "orm" / "js"
CHAPTERS = ROOT / "docs" / "chapters"


@pytest.fixture(scope="module")
def snippets_script():
    """scripts/orm_snippets.py, which writes and renders the snippets."""
    spec = importlib.util.spec_from_file_location(
        "orm_snippets", ROOT / "scripts" / "orm_snippets.py"
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture
def engine():
    made = shop_sa.engine_for("default", pool_size=8, max_overflow=0, pool_timeout=10)
    yield made
    made.dispose()


def catalogue():
    """Products that exercise every rule of the list; committed by the caller's test.

    Listed: Lamp (two active variants, stock in two warehouses, some of it
    reserved), Shelf (no stock row: 0 available) and Desk (an inactive
    variant whose stock must not count). Not listed: an inactive product
    and one whose only variant is inactive (min_price NULL). Lamp and Shelf
    share a creation time, so the id decides between them.
    """
    main = WarehouseFactory()
    east = WarehouseFactory(code="EAST", name="East", is_default=False)
    now = datetime.now(UTC)
    lamp = ProductFactory(name="Lamp", slug="lamp", created_at=now)
    for sku, price, levels in [
        ("LAMP-1", "25.00", [(main, 5, 1), (east, 3, 0)]),
        ("LAMP-2", "19.50", [(main, 2, 2)]),
    ]:
        variant = VariantFactory(product=lamp, sku=sku, price=Decimal(price))
        for warehouse, on_hand, reserved in levels:
            StockLevelFactory(
                variant=variant,
                warehouse=warehouse,
                quantity_on_hand=on_hand,
                reserved=reserved,
            )
    shelf = ProductFactory(name="Shelf", slug="shelf", created_at=now)
    VariantFactory(product=shelf, sku="SHELF-1", price=Decimal("80.00"))
    desk = ProductFactory(name="Desk", slug="desk", created_at=now - timedelta(days=1))
    for sku, active, on_hand in [("DESK-1", True, 4), ("DESK-2", False, 9)]:
        variant = VariantFactory(product=desk, sku=sku, is_active=active)
        StockLevelFactory(variant=variant, warehouse=main, quantity_on_hand=on_hand)
    retired = ProductFactory(name="Retired", slug="retired", is_active=False)
    StockLevelFactory(variant=VariantFactory(product=retired, sku="RETIRED-1"))
    hidden = ProductFactory(name="Hidden", slug="hidden")
    VariantFactory(product=hidden, sku="HIDDEN-1", is_active=False)
    return {"lamp": lamp, "shelf": shelf, "desk": desk}


def django_page(limit):
    return [
        (p.id, p.category_slug, p.min_price, p.available)
        for p in selectors.product_list().using("default")[:limit]
    ]


def test_every_mapped_column_is_the_django_models_column_with_its_type():
    models = {model._meta.db_table: model for model in apps.get_models()}
    connection = connections["default"]
    dialect = postgresql.dialect()
    mismatches = []
    for mapper in shop_sa.Base.registry.mappers:
        table = mapper.local_table
        fields = {f.column: f for f in models[table.name]._meta.concrete_fields}
        for column in table.columns:
            field = fields.get(column.name)
            if field is None:
                mismatches.append(f"{table.name}.{column.name}: no such field")
                continue
            mapped = (column.type.compile(dialect).lower(), column.nullable)
            # A foreign key's db_type is its target's: bigint, not bigserial.
            declared = field.rel_db_type(connection) if field.is_relation else None
            declared = (declared or field.db_type(connection), field.null)
            if mapped != declared and not (field.primary_key and mapped[0] == "bigint"):
                mismatches.append(f"{table.name}.{column.name}: {mapped} != {declared}")
    assert mismatches == []


@pytest.mark.django_db
def test_the_context_the_lab_sets_is_the_one_staff_transaction_sets():
    names = list(shop_sa.STAFF_CONTEXT)
    with staff_transaction(), connections["default"].cursor() as cursor:
        cursor.execute(
            "SELECT current_setting(name, true) FROM unnest(%s::text[]) "
            "WITH ORDINALITY AS setting (name, position) ORDER BY position",
            [names],
        )
        values = [value for (value,) in cursor.fetchall()]
    assert dict(zip(names, values, strict=True)) == shop_sa.STAFF_CONTEXT


@pytest.mark.django_db(transaction=True, databases=ALL_DATABASES)
def test_sqlalchemy_returns_the_page_and_locks_the_rows_django_does(engine):
    made = catalogue()

    with Session(engine) as session:
        pages = {limit: shop_sa.product_list(session, limit=limit) for limit in (2, 10)}
    assert pages[10] == django_page(10)
    assert pages[2] == django_page(2)
    assert [row[0] for row in pages[10]] == [
        made["shelf"].id,
        made["lamp"].id,
        made["desk"].id,
    ]
    assert [row[3] for row in pages[10]] == [0, 7, 4]

    variant_ids = list(
        made["lamp"].variants.order_by("-sku").values_list("id", flat=True)
    )
    with Session(engine) as session, session.begin():
        via_sqlalchemy = shop_sa.stock_levels_lock(session, variant_ids=variant_ids)
    with staff_transaction():
        via_django = [
            astuple(row) for row in locks.stock_levels_lock(variant_ids=variant_ids)
        ]
    assert via_sqlalchemy == via_django
    assert [row[1:3] for row in via_sqlalchemy] == sorted(
        row[1:3] for row in via_sqlalchemy
    )


@pytest.mark.concurrency
@pytest.mark.django_db(transaction=True, databases=ALL_DATABASES)
def test_concurrent_conditional_reservations_never_exceed_the_units_on_hand(engine):
    stock = StockLevelFactory(quantity_on_hand=5)

    def reserve_one():
        with Session(engine) as session, session.begin():
            shop_sa.set_context(session, shop_sa.STAFF_CONTEXT)
            return shop_sa.stock_reserve(session, stock_id=stock.pk, quantity=1)

    results, errors = run_concurrently([reserve_one] * 8)

    assert errors == [None] * 8
    assert results.count(True) == 5
    stock.refresh_from_db()
    assert (stock.quantity_on_hand, stock.reserved) == (5, 5)


def test_alembic_has_one_chain_from_base_to_the_change():
    script = ScriptDirectory.from_config(alembic_lab.alembic_config())
    chain = [rev.revision for rev in script.walk_revisions("base", "heads")]
    assert script.get_heads() == [alembic_lab.CHANGE]
    assert chain == [alembic_lab.CHANGE, alembic_lab.BASELINE]


@pytest.mark.django_db(databases=["owner"])
def test_the_migration_snippets_are_what_alembic_and_django_print_now(snippets_script):
    stale = [
        name
        for name, _, body in snippets_script.migration_snippet_bodies()
        if snippets_script.snippet_body(
            (ROOT / "docs" / "snippets" / name).read_text(encoding="utf-8")
        )
        != body + "\n"
    ]
    assert stale == [], "run scripts/orm_snippets.sh and commit docs/snippets/orm/"


def test_every_orm_reference_in_the_chapters_resolves():
    # tests/shop/test_docs.py checks the folders it knows; orm/ is this one's.
    problems = [
        f"{path.name}:{number}: `{span}`: {problem}"
        for path in sorted(CHAPTERS.glob("*.md"))
        for number, line in prose_lines(path)
        for span in CODE_SPAN.findall(line)
        if span.startswith("orm/") and (problem := reference_problem(span))
    ]
    mentioned = [
        span
        for path in CHAPTERS.glob("*.md")
        for _, line in prose_lines(path)
        for span in CODE_SPAN.findall(line)
        if span.startswith("orm/")
    ]
    assert mentioned, "chapter 16 names the files under orm/"
    assert problems == []


JS_SCRIPTS = {
    # name: (command, statements it sends for one page, what it needs)
    "sequelize": (["node", "sequelize_products.js"], 1, JS / "node_modules"),
    "prisma": (
        ["npx", "--no-install", "tsx", "prisma_products.ts"],
        4,
        JS / "generated" / "prisma",
    ),
}


@pytest.mark.django_db(transaction=True, databases=ALL_DATABASES)
@pytest.mark.parametrize("name", list(JS_SCRIPTS))
def test_the_javascript_orms_return_the_page_django_returns(
    name, snippets_script, tmp_path
):
    command, statements, needs = JS_SCRIPTS[name]
    if not needs.is_dir():
        pytest.skip(
            f"{needs.relative_to(ROOT)} is missing: scripts/orm_snippets.sh installs "
            "orm/js (npm ci, prisma generate); CI does without Node"
        )
    catalogue()
    rows_file = tmp_path / "rows.json"
    env = {
        **snippets_script.js_environment(),
        "PAGE_SIZE": "10",
        "ROWS_JSON": str(rows_file),
    }

    done = subprocess.run(
        command, cwd=JS, env=env, capture_output=True, text=True, timeout=60
    )

    assert done.returncode == 0, done.stderr
    expected = [
        {
            "id": str(id_),
            "slug": slug,
            "category_slug": slug_of_category,
            "min_price": str(min_price),
            "available": available,
        }
        for id_, slug, slug_of_category, min_price, available in [
            (p.id, p.slug, p.category_slug, p.min_price, p.available)
            for p in selectors.product_list().using("default")[:10]
        ]
    ]
    assert json.loads(rows_file.read_text()) == expected
    sent = [line for line in done.stdout.splitlines() if line.startswith("SELECT")]
    assert len(sent) == statements, done.stdout
