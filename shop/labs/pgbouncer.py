"""Lab `pgbouncer` (16): two clients share one server connection, and no
context leaks between them, because the shop's is transaction-local.

pgbouncer (scripts/services.sh) runs in transaction mode: a server
connection serves one transaction of a client, then whichever client needs
one next; of its idle server connections it hands out the one released
last. Two clients that take turns therefore run on one server session.
What lives in a session rather than a transaction meets the next client,
and the lab shows each case: a session-level SET, a prepared statement, a
cursor WITH HOLD. The lab's own clients connect as shop_app, whether or not
the app itself goes through pgbouncer (DATABASE_VIA_PGBOUNCER), and the
server connections they used are replaced at the end.
"""

from __future__ import annotations

from contextlib import ExitStack

import psycopg
from django.conf import settings
from django.db import connections

from shop import pgbouncer
from shop.lab import LabFailed, Narrator, lab

SERVER_PID = "SELECT pg_backend_pid() AS server_pid"


@lab(
    "pgbouncer",
    chapter="16",
    summary="Two clients share one server connection; no context leaks between them",
)
def pgbouncer_lab(n: Narrator) -> None:
    database = connections["default"].settings_dict["NAME"]
    try:
        running = pgbouncer.config()
    except psycopg.OperationalError as error:
        raise LabFailed(
            f"pgbouncer does not answer on {settings.PGBOUNCER_HOST}:"
            f"{settings.PGBOUNCER_PORT} ({error}). Install it (apt-get install "
            "pgbouncer) and start it with `scripts/services.sh up`."
        ) from error
    n.step("pgbouncer's settings (its admin console: SHOW CONFIG)")
    shown = ["pool_mode", "default_pool_size", "client_tls_sslmode"]
    shown += ["server_tls_sslmode", "server_reset_query_always"]
    n.table(["key", "value"], [(key, running[key]) for key in shown])
    n.expect(running["pool_mode"] == "transaction", "transaction pooling")

    with ExitStack() as stack:
        stack.callback(pgbouncer.reconnect, database)
        a = stack.enter_context(pgbouncer.connect()).cursor()
        b = stack.enter_context(pgbouncer.connect()).cursor()
        server = _one_server(n, a, b)
        _tls(n, database, server)
        _context(n, a, b, server)
        _prepared_statements(n, stack, b)
        _cursor_with_hold(n, stack, b)


def _one_server(n: Narrator, a, b) -> int:
    n.step("Two clients take turns; one server connection serves both")
    n.say(
        f"    client A and client B: two connections to pgbouncer "
        f"(its keys for them: {a.connection.info.backend_pid} and "
        f"{b.connection.info.backend_pid})"
    )
    (server_a,) = n.sql(SERVER_PID, cursor=a, label="client A")[0]
    (server_b,) = n.sql(SERVER_PID, cursor=b, label="client B")[0]
    n.expect(
        a.connection.info.backend_pid != b.connection.info.backend_pid,
        "two client connections",
    )
    n.expect(server_a == server_b, "one server session ran both clients' statements")
    return server_a


def _tls(n: Narrator, database: str, server: int) -> None:
    n.step("TLS on both sides: pgbouncer's clients, and its server connections")
    clients = [
        (row["user"], row["port"], row["tls"])
        for row in pgbouncer.show("CLIENTS")
        if row["database"] == database
    ]
    n.show_sql("SHOW CLIENTS", label="pgbouncer's admin console, this database")
    n.table(["user", "port", "tls"], clients)
    servers = [
        (row["remote_pid"], row["state"], row["tls"])
        for row in pgbouncer.server_connections(database)
    ]
    n.show_sql("SHOW SERVERS", label="pgbouncer's admin console, this database")
    n.table(["server_pid", "state", "tls"], servers)
    n.expect(
        len(clients) >= 2 and all(tls for _, _, tls in clients),
        "every client connection to pgbouncer is encrypted (client_tls_sslmode)",
    )
    n.expect(
        any(pid == server for pid, _, _ in servers) and all(t for _, _, t in servers),
        "so is each server connection, whose certificate pgbouncer verified "
        "(server_tls_sslmode verify-full)",
    )


def _context(n: Narrator, a, b, server: int) -> None:
    n.step("The app's context is transaction-local: it ends at COMMIT")
    n.sql("BEGIN", cursor=a, label="client A acts for customer 42")
    n.sql("SELECT set_config('app.customer_id', %s, true)", ["42"], cursor=a)
    n.sql("COMMIT", cursor=a)
    rows = n.sql(
        f"{SERVER_PID}, current_setting('app.customer_id', true) AS customer",
        cursor=b,
        label="client B, next on the same server connection",
    )
    n.expect(rows[0][0] == server, "client B got the server connection A used")
    n.expect(rows[0][1] in ("", None), "and no customer comes with it")

    n.step("What the app never does: a session-level SET stays with the server")
    n.say(
        "    (a setting of the lab's own, lab.customer_id: no policy reads it, so "
        "nothing can leak into the app's clients even while it is set)"
    )
    n.sql("SET lab.customer_id = '42'", cursor=a, label="client A, autocommit")
    rows = n.sql(
        f"{SERVER_PID}, current_setting('lab.customer_id', true) AS customer",
        cursor=b,
        label="client B",
    )
    n.expect(
        rows == [(server, "42")],
        "client B, who never set it, reads A's session setting: it leaked",
    )
    n.sql("RESET lab.customer_id", cursor=b, label="clean up, on the same server")


def _prepared_statements(n: Narrator, stack: ExitStack, b) -> None:
    n.step("A prepared statement lives on one server connection")
    n.say(
        "    client C prepares every statement (psycopg's prepare_threshold=0); "
        "Django's default, and the shop's, is None: never"
    )
    c = stack.enter_context(pgbouncer.connect(prepare_threshold=0)).cursor()
    query = f"{SERVER_PID}, %s::int AS answer"
    (prepared_on, _) = n.sql(query, [1], cursor=c, label="client C, prepared")[0]
    n.sql("BEGIN", cursor=b, label="client B opens a transaction")
    rows = n.sql(SERVER_PID, cursor=b)
    n.expect(rows == [(prepared_on,)], "B now holds the server C prepared on")
    n.expect_error(
        lambda: c.execute(query, [2]),
        sqlstate="26000",
        claim="C's next run goes to another server connection, where its "
        "prepared statement does not exist",
    )
    n.sql("COMMIT", cursor=b)

    d = stack.enter_context(pgbouncer.connect(prepare_threshold=None)).cursor()
    n.sql(query, [1], cursor=d, label="client D, the shop's way: nothing prepared")
    n.sql("BEGIN", cursor=b, label="client B holds a server connection again")
    n.sql(SERVER_PID, cursor=b)
    rows = n.sql(query, [2], cursor=d, label="client D, on another server")
    n.sql("COMMIT", cursor=b)
    n.expect(rows[0][1] == 2, "without prepared statements any server will do")


def _cursor_with_hold(n: Narrator, stack: ExitStack, b) -> None:
    n.step("A cursor WITH HOLD (Django's iterator() in autocommit) also stays put")
    e = stack.enter_context(pgbouncer.connect()).cursor()
    n.sql(
        "DECLARE lab_rows CURSOR WITH HOLD FOR SELECT generate_series(1, 3) AS n",
        cursor=e,
        label="client E, autocommit",
    )
    n.sql("FETCH 1 FROM lab_rows", cursor=e)
    n.sql("BEGIN", cursor=b, label="client B holds that server connection")
    n.sql(SERVER_PID, cursor=b)
    n.expect_error(
        lambda: e.execute("FETCH 1 FROM lab_rows"),
        sqlstate="34000",
        claim="E's next FETCH runs elsewhere, where the cursor does not exist",
    )
    n.sql("COMMIT", cursor=b)
    n.sql("CLOSE lab_rows", cursor=b, label="clean up, on the cursor's server")
    n.say(
        "    hence DISABLE_SERVER_SIDE_CURSORS on `default` through pgbouncer "
        "(shop/settings/base.py: through_pgbouncer)"
    )
