"""Lab `transactional-ddl` (04): DDL rolls back with its transaction, and the
app's role, shop_app, cannot change the schema at all.

A catalog lab because it tries to alter catalog_product, the table chapter
04's migrations build.
"""

from shop.lab import Narrator, lab, rolled_back


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
