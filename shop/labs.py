"""The project's labs: ACID (01), DDL (04), the ER diagram (13), schema changes (17).

Labs that need DDL run as shop_owner (alias `owner`); everything the app
itself would do runs as shop_app (alias `default`). Rows are written inside
transactions that are rolled back; the two throw-away tables
(lab_acid_durability, lab_zero_downtime) are dropped in `finally`.
"""

import difflib
import io
import re
import threading
import time
from decimal import Decimal

from django.apps import apps
from django.core.management import call_command
from django.db import connections, transaction

from catalog.labs import catalog_rows
from catalog.models import StockLevel
from shop.lab import LabFailed, Narrator, connect, lab, rolled_back

# --- 01 ---------------------------------------------------------------------


@lab(
    "acid",
    chapter="01",
    summary="Atomicity, consistency, isolation and durability, each shown live",
)
def acid(n: Narrator) -> None:
    _atomicity(n)
    _consistency(n)
    _isolation(n)
    _durability(n)


def _atomicity(n: Narrator) -> None:
    n.step("Atomicity: the statements of a transaction happen together or not at all")
    count = """
        SELECT (SELECT count(*) FROM catalog_category WHERE slug = %(slug)s)
                 AS categories,
               (SELECT count(*) FROM catalog_product WHERE slug = %(slug)s)
                 AS products
    """
    names = {"slug": "lab-acid-atomicity"}
    before = n.sql(count, names)

    def publish_product_with_a_bad_price():
        with transaction.atomic(using="default"):
            n.say("    BEGIN")
            category = n.sql(
                "INSERT INTO catalog_category (name, slug) VALUES (%s, %s) "
                "RETURNING id",
                ["Lab ACID", names["slug"]],
            )[0][0]
            product = n.sql(
                """
                INSERT INTO catalog_product
                    (category_id, name, slug, description, is_active,
                     created_at, updated_at)
                VALUES (%s, %s, %s, '', true, now(), now())
                RETURNING id
                """,
                [category, "Lab ACID product", names["slug"]],
            )[0][0]
            n.sql(
                "INSERT INTO catalog_product_variant "
                "(product_id, sku, name, price, is_active) "
                "VALUES (%s, %s, '', %s, true)",
                [product, "LAB-ACID-1", Decimal("-1.00")],
                label="the third statement breaks a rule",
            )

    n.expect_error(
        publish_product_with_a_bad_price,
        sqlstate="23514",
        constraint="catalog_variant_price_non_negative",
        claim="the third INSERT is refused (a negative price)",
    )
    n.say("    ROLLBACK  -- atomic() rolls back when an exception leaves the block")
    after = n.sql(count, names)
    n.expect(
        after == before == [(0, 0)],
        "the category and product inserted before the error are gone too",
    )


def _consistency(n: Narrator) -> None:
    n.step("Consistency: a transaction moves the data from one valid state to another")
    with rolled_back("default"):
        n.say("    BEGIN")
        ids = catalog_rows(n, tag="acid")
        stock = n.sql(
            """
            INSERT INTO catalog_stock_level
                (variant_id, warehouse_id, quantity_on_hand, reserved, updated_at)
            VALUES (%s, %s, %s, 0, now())
            RETURNING id
            """,
            [ids["variant_id"], ids["warehouse_id"], 5],
            label="5 units on hand",
        )[0][0]
        reserve = (
            "UPDATE catalog_stock_level SET reserved = reserved + %s WHERE id = %s"
        )
        n.expect_sql_error(
            reserve,
            [6, stock],
            sqlstate="23514",
            constraint="catalog_stock_reserved_within_on_hand",
            claim="reserving 6 of 5 units is refused by a CHECK",
        )
        n.sql(reserve, [5, stock], label="reserving all 5 is a valid state")
        rows = n.sql(
            "SELECT quantity_on_hand, reserved FROM catalog_stock_level WHERE id = %s",
            [stock],
        )
        n.expect(rows == [(5, 5)], "the row holds only the valid change")
        n.say("    ROLLBACK")


def _isolation(n: Narrator) -> None:
    n.step("Isolation: another session does not see uncommitted rows (READ COMMITTED)")
    slug = "lab-acid-isolation"
    seen = "SELECT count(*) AS visible FROM catalog_category WHERE slug = %s"
    with rolled_back("default"):
        n.say("    BEGIN  -- session A, the app")
        n.sql(
            "INSERT INTO catalog_category (name, slug) VALUES (%s, %s)",
            ["Lab ACID isolation", slug],
            label="session A",
        )
        with connect("default") as other, other.cursor() as cursor:
            level = n.sql(
                "SHOW transaction_isolation", cursor=cursor, label="session B"
            )
            rows = n.sql(seen, [slug], cursor=cursor, label="session B")
            n.expect(
                level == [("read committed",)] and rows == [(0,)],
                "session B, at READ COMMITTED, does not see A's uncommitted row",
            )
        rows = n.sql(seen, [slug], label="session A")
        n.expect(rows == [(1,)], "session A sees its own row")
        n.say("    ROLLBACK  -- session A")


def _durability(n: Narrator) -> None:
    n.step("Durability: COMMIT returns once the change is in the flushed WAL")
    settings = n.sql(
        "SELECT name, setting FROM pg_settings "
        "WHERE name IN ('fsync', 'synchronous_commit', 'wal_level') ORDER BY name"
    )
    values = dict(settings)
    n.expect(
        values["fsync"] == "on" and values["synchronous_commit"] != "off",
        "fsync is on and synchronous_commit is not off: a commit waits for the "
        "WAL flush (with either off, the server trades durability for speed)",
    )
    _create_throwaway(
        n, "lab_acid_durability", "(id bigint PRIMARY KEY, note text NOT NULL)"
    )
    try:
        before = n.sql(
            "SELECT pg_current_wal_lsn() AS lsn", label="the WAL position before"
        )[0][0]
        with transaction.atomic(using="default"):
            n.say("    BEGIN")
            n.sql(
                "INSERT INTO lab_acid_durability (id, note) VALUES (%s, %s)",
                [1, "paid"],
            )
        n.say("    COMMIT")
        rows = n.sql(
            """
            SELECT pg_current_wal_lsn() AS lsn,
                   pg_current_wal_flush_lsn() AS flushed,
                   pg_wal_lsn_diff(pg_current_wal_flush_lsn(), %s::pg_lsn)
                     AS bytes_flushed_since
            """,
            [before],
            label="the WAL position after COMMIT",
        )
        n.expect(
            rows[0][2] > 0,
            f"the WAL moved forward from {before} and was flushed past it: the "
            "committed row would survive a crash",
        )
    finally:
        _drop_throwaway(n, "lab_acid_durability")


def _create_throwaway(n: Narrator, table: str, columns: str) -> None:
    """Create a lab's table as shop_owner, refusing to touch one that exists."""
    rows = n.sql("SELECT to_regclass(%s) AS existing", [table], using="owner")
    if rows[0][0] is not None:
        raise LabFailed(
            f"table {table} already exists: another run of this lab is in "
            f"progress, or one was killed. If none is running: DROP TABLE {table};"
        )
    # The name and columns are constants of this module, never user input.
    n.sql(f"CREATE TABLE {table} {columns}", using="owner", label="as shop_owner")


def _drop_throwaway(n: Narrator, table: str) -> None:
    n.sql(f"DROP TABLE IF EXISTS {table}", using="owner", label="clean up")


# --- 04 ---------------------------------------------------------------------


@lab(
    "transactional-ddl",
    chapter="04",
    summary="CREATE and ALTER roll back; the app's role cannot change the schema",
)
def transactional_ddl(n: Narrator) -> None:
    n.step("As shop_owner: DDL inside a transaction, then ROLLBACK")
    exists = "SELECT current_user, to_regclass(%s) AS existing"
    rows = n.sql(exists, ["lab_ddl_rollback"], using="owner")
    n.expect(rows[0][1] is None, "the table does not exist before")
    with rolled_back("owner"):
        n.say("    BEGIN")
        n.sql("CREATE TABLE lab_ddl_rollback (id bigint PRIMARY KEY)", using="owner")
        n.sql(
            "ALTER TABLE lab_ddl_rollback ADD COLUMN note text NOT NULL DEFAULT ''",
            using="owner",
        )
        n.sql(
            "INSERT INTO lab_ddl_rollback (id, note) VALUES (%s, %s)",
            [1, "inside the transaction"],
            using="owner",
        )
        columns = n.sql(
            "SELECT column_name, data_type FROM information_schema.columns "
            "WHERE table_name = %s ORDER BY ordinal_position",
            ["lab_ddl_rollback"],
            using="owner",
        )
        n.expect(
            [c for c, _ in columns] == ["id", "note"],
            "inside the transaction the table has both columns",
        )
        n.say("    ROLLBACK")
    rows = n.sql(exists, ["lab_ddl_rollback"], using="owner")
    n.expect(
        rows[0][1] is None,
        "after ROLLBACK the table, its added column and its row are all gone",
    )
    n.say(
        "A migration that fails half-way therefore leaves no half-built schema:\n"
        "Django wraps each migration in one transaction on PostgreSQL."
    )

    n.step("As shop_app: the app may change rows, never the schema")
    n.sql("SELECT current_user, has_schema_privilege('public', 'CREATE') AS may_create")
    n.expect_sql_error(
        "CREATE TABLE lab_ddl_app (id bigint)",
        sqlstate="42501",
        contains="permission denied for schema public",
        claim="shop_app cannot create a table in public (42501 insufficient_privilege)",
    )
    n.expect_sql_error(
        "ALTER TABLE catalog_product ADD COLUMN lab_note text",
        sqlstate="42501",
        contains="must be owner of table catalog_product",
        claim="shop_app cannot alter a shop table: only its owner can",
    )
    n.say(
        "So a SQL injection or a bug in the app can damage rows but cannot drop\n"
        "or alter tables; migrations run as shop_owner (`migrate --database owner`)."
    )


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


# --- 13 ---------------------------------------------------------------------

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


# --- 17 ---------------------------------------------------------------------

ZD_ROWS = 50_000
ZD_BATCH = 10_000

# What this session holds on the table, and how many sequential scans of the
# table it made since `scans_before` (pg_stat_xact_* counts are this
# backend's own and are not flushed while a transaction is open).
OBSERVE_SQL = """
SELECT l.mode AS lock_held,
       s.seq_scan - %(scans_before)s AS table_scans
FROM pg_locks AS l
JOIN pg_stat_xact_user_tables AS s ON s.relid = l.relation
WHERE l.pid = pg_backend_pid() AND l.relation = %(table)s::regclass
ORDER BY l.mode
"""
SCANS_SQL = "SELECT seq_scan FROM pg_stat_xact_user_tables WHERE relid = %s::regclass"


@lab(
    "zero-downtime",
    chapter="17",
    summary="A NOT NULL column and an index on a live table, without long locks",
)
def zero_downtime(n: Narrator) -> None:
    n.step(f"A throw-away table with {ZD_ROWS:,} rows, standing in for a busy one")
    _create_throwaway(
        n,
        "lab_zero_downtime",
        "(id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, "
        "on_hand integer NOT NULL)",
    )
    try:
        n.sql(
            "INSERT INTO lab_zero_downtime (on_hand) "
            "SELECT mod(g, 100) FROM generate_series(1, %s) AS g",
            [ZD_ROWS],
            using="owner",
        )
        observed = []
        observed.append(_add_column(n))
        observed.append(_backfill(n))
        observed.append(_add_check_not_valid(n))
        observed.append(_validate(n))
        observed.append(_create_index_concurrently(n))
        observed.append(_set_not_null(n))
        n.step("Summary: the locks observed in pg_locks at each step")
        n.table(["step", "lock on the table", "table scans"], observed)
    finally:
        _drop_throwaway(n, "lab_zero_downtime")


def _observed_ddl(n: Narrator, statements, *, while_open=None, rollback=False):
    """Run DDL in one transaction as shop_owner; return (lock modes, scans)."""
    with transaction.atomic(using="owner"), connections["owner"].cursor() as cursor:
        cursor.execute(SCANS_SQL, ["lab_zero_downtime"])
        (scans_before,) = cursor.fetchone()
        n.say("    BEGIN")
        for statement in statements:
            n.sql(statement, cursor=cursor)
        rows = n.sql(
            OBSERVE_SQL,
            {"scans_before": scans_before, "table": "lab_zero_downtime"},
            cursor=cursor,
            label="locks this session holds on the table; its scans in this step",
        )
        if while_open:
            while_open()
        if rollback:
            transaction.set_rollback(True, using="owner")
    n.say("    ROLLBACK" if rollback else "    COMMIT")
    return [mode for mode, _ in rows], rows[0][1]


def _filenode(n: Narrator, *, cursor=None, using="owner") -> int:
    rows = n.sql(
        "SELECT pg_relation_filenode(%s) AS filenode",
        ["lab_zero_downtime"],
        cursor=cursor,
        using=using,
    )
    return rows[0][0]


def _add_column(n: Narrator):
    n.step("1. ADD COLUMN, nullable and without a default: a catalog change only")
    before = _filenode(n)

    def reader_waits():
        n.say("    -- meanwhile, another session only wants to read:")
        with connect("default") as other, other.cursor() as cursor:
            n.sql("SET lock_timeout = '200ms'", cursor=cursor)
            n.expect_sql_error(
                "SELECT count(*) FROM lab_zero_downtime",
                cursor=cursor,
                sqlstate="55P03",
                claim="even a reader waits while the ALTER's lock is held: give "
                "migrations a lock_timeout and keep their transactions short",
            )

    modes, scans = _observed_ddl(
        n,
        [
            "ALTER TABLE lab_zero_downtime ADD COLUMN reserved integer",
            # New rows get 0 from now on, so the backfill is a finite job.
            "ALTER TABLE lab_zero_downtime ALTER COLUMN reserved SET DEFAULT 0",
        ],
        while_open=reader_waits,
    )
    after = _filenode(n)
    n.expect(
        modes == ["AccessExclusiveLock"] and scans == 0 and after == before,
        "ADD COLUMN took ACCESS EXCLUSIVE but scanned nothing and kept the same "
        "file: no rewrite, so the lock lasts milliseconds",
    )
    n.say("    -- for contrast, a volatile default must write a value into every row:")
    with rolled_back("owner"), connections["owner"].cursor() as cursor:
        n.sql(
            "ALTER TABLE lab_zero_downtime "
            "ADD COLUMN lab_rewrite double precision DEFAULT random()",
            cursor=cursor,
        )
        rewritten = _filenode(n, cursor=cursor)
    n.expect(
        rewritten != before,
        "DEFAULT random() rewrote the table into a new file (rolled back here)",
    )
    return ("ADD COLUMN ... NULL; SET DEFAULT", ", ".join(modes), scans)


def _backfill(n: Narrator):
    n.step(f"2. Backfill in batches of {ZD_BATCH:,} rows, one short transaction each")
    rows = n.sql("SELECT min(id), max(id) FROM lab_zero_downtime", using="owner")
    low, high = rows[0]
    batch_sql = (
        "UPDATE lab_zero_downtime SET reserved = 0 "
        "WHERE id >= %s AND id < %s AND reserved IS NULL"
    )
    n.show_sql(batch_sql, [low, low + ZD_BATCH], label="each batch, by primary key")
    counts, first = [], None
    with connections["owner"].cursor() as cursor:
        for start in range(low, high + 1, ZD_BATCH):
            begun = time.monotonic()
            with transaction.atomic(using="owner"):
                if first is None:
                    cursor.execute(SCANS_SQL, ["lab_zero_downtime"])
                    (scans_before,) = cursor.fetchone()
                cursor.execute(batch_sql, [start, start + ZD_BATCH])
                counts.append(cursor.rowcount)
                if first is None:
                    params = {
                        "scans_before": scans_before,
                        "table": "lab_zero_downtime",
                    }
                    cursor.execute(OBSERVE_SQL, params)
                    first = cursor.fetchall()
            elapsed = (time.monotonic() - begun) * 1000
            n.say(
                f"    -> batch {len(counts)}: ids {start}..{start + ZD_BATCH - 1}, "
                f"{counts[-1]} row(s), committed in {elapsed:.0f} ms"
            )
    n.say("    -- inside batch 1, before its COMMIT:")
    n.show_sql(OBSERVE_SQL, params)
    n.table(["lock_held", "table_scans"], first)
    rows = n.sql(
        "SELECT count(*) AS still_null FROM lab_zero_downtime WHERE reserved IS NULL",
        using="owner",
    )
    n.expect(
        sum(counts) == ZD_ROWS
        and rows == [(0,)]
        and first == [("RowExclusiveLock", 0)],
        f"{len(counts)} batches set all {ZD_ROWS:,} rows; a batch holds ROW "
        "EXCLUSIVE (which lets other writers in) and finds its rows through the "
        "primary key, without scanning the table",
    )
    return ("UPDATE ... (each batch)", first[0][0], first[0][1])


def _add_check_not_valid(n: Narrator):
    n.step("3. ADD CONSTRAINT ... CHECK (reserved IS NOT NULL) NOT VALID")
    modes, scans = _observed_ddl(
        n,
        [
            "ALTER TABLE lab_zero_downtime ADD CONSTRAINT "
            "lab_zero_downtime_reserved_not_null "
            "CHECK (reserved IS NOT NULL) NOT VALID"
        ],
    )
    n.expect(
        modes == ["AccessExclusiveLock"] and scans == 0,
        "NOT VALID: a brief ACCESS EXCLUSIVE, no scan; new and updated rows are "
        "checked from now on",
    )
    return ("ADD CONSTRAINT ... NOT VALID", ", ".join(modes), scans)


def _validate(n: Narrator):
    n.step("4. VALIDATE CONSTRAINT: scans the table under a weaker lock")

    def writer_proceeds():
        n.say("    -- meanwhile, another session writes:")
        with connect("default") as other, other.cursor() as cursor:
            n.sql("SET lock_timeout = '2s'", cursor=cursor)
            n.sql(
                "UPDATE lab_zero_downtime SET on_hand = on_hand + 1 WHERE id = %s",
                [1],
                cursor=cursor,
            )
            n.sql(
                "INSERT INTO lab_zero_downtime (on_hand) VALUES (%s)",
                [7],
                cursor=cursor,
            )
            other.rollback()
        n.say("    -> (the writer rolled back its rows, to keep the table as it was)")

    modes, scans = _observed_ddl(
        n,
        [
            "ALTER TABLE lab_zero_downtime "
            "VALIDATE CONSTRAINT lab_zero_downtime_reserved_not_null"
        ],
        while_open=writer_proceeds,
    )
    n.expect(
        modes == ["ShareUpdateExclusiveLock"] and scans == 1,
        "VALIDATE scanned the table once and holds only SHARE UPDATE EXCLUSIVE, "
        "which let the writer through",
    )
    return ("VALIDATE CONSTRAINT", ", ".join(modes), scans)


def _create_index_concurrently(n: Narrator):
    n.step("5. CREATE INDEX CONCURRENTLY: writes go on while the index builds")
    ddl = (
        "CREATE INDEX CONCURRENTLY lab_zero_downtime_reserved_idx "
        "ON lab_zero_downtime (reserved)"
    )

    def in_a_transaction():
        with transaction.atomic(using="owner"):
            n.sql(ddl, using="owner")

    n.expect_error(
        in_a_transaction,
        sqlstate="25001",
        claim="CONCURRENTLY refuses to run inside a transaction block (a Django "
        "migration needs atomic = False)",
    )

    n.say(
        "\n    -- session B holds a snapshot from before the build, as a long\n"
        "    -- report would; session C (autocommit) runs the build:"
    )
    result: dict = {}
    with (
        connect("default", autocommit=True) as blocker,
        blocker.cursor() as b,
        connect("owner", autocommit=True) as session_c,
    ):
        n.sql("BEGIN ISOLATION LEVEL REPEATABLE READ", cursor=b, label="session B")
        n.sql("SELECT count(*) FROM lab_zero_downtime", cursor=b, label="session B")
        pid = session_c.info.backend_pid
        # Fail rather than hang if some other long transaction never ends.
        session_c.execute("SET lock_timeout = '30s'")
        builder = threading.Thread(target=_build_index, args=(session_c, ddl, result))
        builder.start()
        try:
            locks = _wait_for_builder(n, b, pid, result)
            n.expect(
                ("relation", "ShareUpdateExclusiveLock", True) in locks
                and any(
                    kind == "virtualxid" and not granted for kind, _, granted in locks
                ),
                "the build holds SHARE UPDATE EXCLUSIVE on the table and waits for "
                "session B's transaction to end",
            )
            n.sql(
                "INSERT INTO lab_zero_downtime (on_hand) VALUES (%s)",
                [7],
                cursor=b,
                label="session B writes while the build waits",
            )
            n.sql("ROLLBACK", cursor=b, label="session B ends its transaction")
        finally:
            builder.join(timeout=60)
            if builder.is_alive():
                _cancel(pid)
                builder.join(timeout=10)
    if "error" in result:
        _build_failed(result["error"])
    n.say(f"    -> session C: {ddl} finished after {result['seconds']:.2f} s")
    rows = n.sql(
        "SELECT indisvalid, indisready FROM pg_index WHERE indexrelid = %s::regclass",
        ["lab_zero_downtime_reserved_idx"],
        using="owner",
    )
    n.expect(
        rows == [(True, True)],
        "the index is valid once every older transaction had ended",
    )
    return ("CREATE INDEX CONCURRENTLY", "ShareUpdateExclusiveLock", "not measured")


def _build_failed(error) -> None:
    raise LabFailed(
        f"CREATE INDEX CONCURRENTLY failed: {error}. It waits for every "
        "transaction in this database that is older than the build; look for "
        "long ones in pg_stat_activity (xact_start, state 'idle in transaction')."
    )


def _build_index(conn, ddl: str, result: dict) -> None:
    """Session C: run the concurrent build, recording how it ended."""
    begun = time.monotonic()
    try:
        conn.execute(ddl)
    except Exception as exc:  # reported by the lab's main thread
        result["error"] = exc
    result["seconds"] = time.monotonic() - begun


def _wait_for_builder(n: Narrator, cursor, pid: int, result: dict, timeout=15.0):
    """Poll pg_locks until session C is seen waiting; return its locks."""
    locks_sql = """
        SELECT locktype, mode, granted
        FROM pg_locks
        WHERE pid = %(pid)s
          AND (relation = %(table)s::regclass OR locktype = 'virtualxid')
        ORDER BY granted DESC, locktype
    """
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if "error" in result:
            _build_failed(result["error"])
        params = {"pid": pid, "table": "lab_zero_downtime"}
        cursor.execute(locks_sql, params)
        rows = cursor.fetchall()
        if any(kind == "virtualxid" and not granted for kind, _, granted in rows):
            n.show_sql(locks_sql, params, label="session B looks at session C's locks")
            n.table(["locktype", "mode", "granted"], rows)
            return rows
        time.sleep(0.05)
    raise LabFailed(f"session C was not seen waiting within {timeout} s")


def _cancel(pid: int) -> None:
    with connections["owner"].cursor() as cursor:
        cursor.execute("SELECT pg_cancel_backend(%s)", [pid])


def _set_not_null(n: Narrator):
    n.step("6. SET NOT NULL: a validated CHECK (reserved IS NOT NULL) spares the scan")
    n.say("    -- without the CHECK (rolled back), PostgreSQL must read every row:")
    _, scans_without = _observed_ddl(
        n,
        [
            "ALTER TABLE lab_zero_downtime "
            "DROP CONSTRAINT lab_zero_downtime_reserved_not_null",
            "ALTER TABLE lab_zero_downtime ALTER COLUMN reserved SET NOT NULL",
        ],
        rollback=True,
    )
    n.expect(scans_without == 1, "without the CHECK, SET NOT NULL scanned the table")

    n.say("    -- with the validated CHECK in place:")
    notices: list[str] = []
    raw = connections["owner"]
    raw.ensure_connection()

    def collect(diag):
        notices.append(diag.message_primary)

    raw.connection.add_notice_handler(collect)
    try:
        modes, scans = _observed_ddl(
            n,
            [
                # DEBUG1 carries the server's own account of the decision.
                "SET LOCAL client_min_messages = debug1",
                "ALTER TABLE lab_zero_downtime ALTER COLUMN reserved SET NOT NULL",
            ],
        )
    finally:
        raw.connection.remove_notice_handler(collect)
    for notice in notices:
        n.say(f"    -> the server, during the ALTER: DEBUG: {notice}")
    n.expect(
        modes == ["AccessExclusiveLock"] and scans == 0,
        "with the validated CHECK, SET NOT NULL read no rows: its ACCESS EXCLUSIVE "
        "lasts only as long as a catalog change",
    )
    n.sql(
        "ALTER TABLE lab_zero_downtime "
        "DROP CONSTRAINT lab_zero_downtime_reserved_not_null",
        using="owner",
        label="the CHECK has done its job; NOT NULL now holds the rule",
    )
    return ("SET NOT NULL", ", ".join(modes), scans)
