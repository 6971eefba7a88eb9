"""Lab `injection` (23): SQL built by string formatting runs the attacker's SQL;
a bound parameter never does; identifiers need a whitelist or quoting.

Everything happens in temporary tables inside one transaction that is rolled
back: no table or code path of the shop is involved.
"""

import psycopg
from psycopg import sql

from shop.lab import Narrator, lab, rolled_back

CUSTOMERS = [(1, "ann", "ann@example.com"), (2, "bob", "bob@example.com")]
CUSTOMERS += [(3, "cy", "cy@example.com")]
# The lab's whitelist, shaped like catalog/selectors.py:PRODUCT_ORDERINGS:
# the words a client may send, each mapped to SQL the code wrote itself.
ORDERINGS = {"name": "name", "-name": "name DESC", "newest": "id DESC"}
VICTIM_EXISTS = "SELECT to_regclass('pg_temp.lab_victim') IS NOT NULL AS victim_exists"


def _vulnerable_lookup(n: Narrator, cursor, user_input: str):
    # The bug this lab is about: the value becomes part of the SQL text.
    return n.sql(
        f"SELECT id, name FROM lab_customers WHERE name = '{user_input}'",
        cursor=cursor,
        label="string formatting: f\"... WHERE name = '{user_input}'\"",
    )


def _safe_lookup(n: Narrator, cursor, user_input: str):
    return n.sql(
        "SELECT id, name FROM lab_customers WHERE name = %s",
        [user_input],
        cursor=cursor,
        label="a parameter",
    )


def _victim_exists(n: Narrator, cursor) -> bool:
    return n.sql(VICTIM_EXISTS, cursor=cursor)[0][0]


@lab(
    "injection",
    chapter="23",
    summary="string-built SQL is injectable, parameters are not; identifiers need "
    "a whitelist",
)
def injection(n: Narrator) -> None:
    with rolled_back("default") as connection, connection.cursor() as cursor:
        n.step("Two temporary tables, gone at ROLLBACK")
        n.sql(
            "CREATE TEMP TABLE lab_customers "
            "(id int PRIMARY KEY, name text, email text)",
            cursor=cursor,
        )
        n.sql("CREATE TEMP TABLE lab_victim (id int)", cursor=cursor)
        n.sql(
            "INSERT INTO lab_customers (id, name, email) VALUES (%s, %s, %s), "
            "(%s, %s, %s), (%s, %s, %s)",
            [value for row in CUSTOMERS for value in row],
            cursor=cursor,
        )

        n.step("A lookup built with string formatting, fed x' OR '1'='1")
        always_true = "x' OR '1'='1"
        rows = _vulnerable_lookup(n, cursor, always_true)
        n.expect(
            len(rows) == len(CUSTOMERS),
            "the input closed the string and added OR '1'='1': every row came back",
        )
        rows = _safe_lookup(n, cursor, always_true)
        n.expect(rows == [], "as a parameter the same input is one odd name: no rows")
        quoted = cursor.cursor.mogrify(
            "SELECT id, name FROM lab_customers WHERE name = %s", [always_true]
        )
        n.say(f"    Django's cursor binds on the client; what it sent:\n      {quoted}")
        n.expect(
            "'x'' OR ''1''=''1'" in quoted,
            "client-side binding quotes the value as a literal (its ' doubled)",
        )

        n.step("The same lookup, fed a second statement")
        stacked = "x'; DROP TABLE lab_victim; --"
        rows = _safe_lookup(n, cursor, stacked)
        n.expect(
            rows == [] and _victim_exists(n, cursor),
            "as a parameter: no rows, and lab_victim still exists",
        )
        _vulnerable_lookup(n, cursor, stacked)
        n.expect(
            not _victim_exists(n, cursor),
            "string formatting: the SELECT ran, then DROP TABLE lab_victim ran too "
            "(a statement without parameters may hold several)",
        )
        n.sql("CREATE TEMP TABLE lab_victim (id int)", cursor=cursor, label="again")

        n.step("Server-side binding refuses a second statement next to a parameter")
        connection.ensure_connection()
        with psycopg.Cursor(connection.connection) as server_side:
            n.say("    (a plain psycopg.Cursor, as shop/crypto.py uses: $1 + bind)")
            n.expect_sql_error(
                "SELECT id FROM lab_customers WHERE name = %s; DROP TABLE lab_victim",
                ["ann"],
                cursor=server_side,
                sqlstate="42601",
                contains="cannot insert multiple commands into a prepared statement",
                claim="with a parameter bound on the server, PostgreSQL refuses "
                "two statements in one call (42601)",
            )
        n.expect(_victim_exists(n, cursor), "lab_victim survived")

        n.step("An identifier cannot be a parameter")
        n.expect_sql_error(
            "SELECT id, name FROM lab_customers ORDER BY %s",
            ["name"],
            cursor=cursor,
            sqlstate="42601",
            contains="non-integer constant in ORDER BY",
            claim="ORDER BY %s becomes ORDER BY 'name', a string, not a column (42601)",
        )

        n.step("Safe way 1: a whitelist maps the client's word to SQL the code wrote")
        n.say(f"    ORDERINGS = {ORDERINGS!r}")
        rows = n.sql(
            f"SELECT id, name FROM lab_customers ORDER BY {ORDERINGS['-name']}",
            cursor=cursor,
            label="ordering='-name'",
        )
        n.expect([name for _, name in rows] == ["cy", "bob", "ann"], "sorted by name")
        hostile = "id; DROP TABLE lab_victim; --"
        refused = ORDERINGS.get(hostile) is None
        n.say(f"    ORDERINGS.get({hostile!r}) -> None: answer 400, send no SQL")
        n.expect(refused, "a word outside the whitelist never reaches the SQL")

        n.step("Safe way 2: psycopg.sql.Identifier quotes a name as a name")
        query = sql.SQL("SELECT id, name FROM lab_customers ORDER BY {}").format(
            sql.Identifier(hostile)
        )
        text = query.as_string(connection.connection)
        n.expect_sql_error(
            text,
            cursor=cursor,
            sqlstate="42703",
            claim="the hostile input is one quoted column name that does not exist "
            "(42703 undefined_column)",
        )
        n.expect(_victim_exists(n, cursor), "and lab_victim still exists")
        n.say(
            "Quoting stops the injection but still lets a client pick any column;\n"
            "the whitelist also decides which orderings have an index behind them."
        )
