"""The `lab` framework: live demonstrations of each chapter against the real database.

A lab is a function registered with `@lab(...)` in an app's `labs` package. It gets
a `Narrator` that prints what it does (prose, the exact SQL with its
parameters, the rows that came back) and checks what should have happened.
If the phenomenon did not show, the lab raises `LabFailed` and
`python manage.py lab NAME` exits non-zero. Labs leave no trace: they work
in transactions they roll back, temporary tables, or throw-away tables they
drop.
"""

from __future__ import annotations

import io
import sys
import textwrap
from collections.abc import Callable, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field

import psycopg
from django.db import connections, transaction
from django.utils.module_loading import autodiscover_modules


class LabFailed(Exception):
    """The lab ran, but the behaviour it demonstrates did not happen."""


@dataclass(frozen=True)
class Lab:
    name: str
    chapter: str
    summary: str
    func: Callable[[Narrator], None] = field(repr=False)


REGISTRY: dict[str, Lab] = {}


def lab(name: str, *, chapter: str, summary: str):
    """Register the decorated function as the lab `name` for `chapter` (e.g. "02")."""

    def register(func):
        if name in REGISTRY:
            raise ValueError(f"lab {name!r} is registered twice")
        REGISTRY[name] = Lab(name=name, chapter=chapter, summary=summary, func=func)
        return func

    return register


def discover() -> dict[str, Lab]:
    autodiscover_modules("labs")
    return dict(sorted(REGISTRY.items(), key=lambda item: (item[1].chapter, item[0])))


@contextmanager
def rolled_back(using: str = "default"):
    """Run the block in one transaction on `using` and always roll it back.

    Errors the lab expects must be caught inside a savepoint
    (`Narrator.expect_sql_error` makes one), so the transaction stays usable.
    """
    with transaction.atomic(using=using):
        try:
            yield connections[using]
        finally:
            transaction.set_rollback(True, using=using)


@contextmanager
def connect(alias: str = "default", *, autocommit: bool = False):
    """Open a fresh psycopg connection as `alias`'s role, outside Django's pool.

    Labs about isolation and locking need a second session that Django's
    per-thread connection (or its pool) cannot provide; the settings come
    from the alias, so under pytest it reaches the test database.
    """
    params = connections[alias].get_connection_params()
    conn = psycopg.connect(**params, autocommit=autocommit)
    try:
        yield conn
    finally:
        conn.close()


# Row-level security (chapter 22) shows a transaction that says nobody is
# acting no customer-owned row, and lets it write none. Labs about other
# topics act as staff, who see and may write every customer's rows.
STAFF_SQL = "SELECT set_config('app.is_staff', 'on', %s)"


def act_as_staff_for_session(conn) -> None:
    """Make a lab's own psycopg session act as staff until it closes.

    Session-wide (is_local false) only because the session is private to the
    lab and closed at its end: the app, whose connections are pooled and
    reused, never sets a context beyond its transaction.
    """
    conn.execute(STAFF_SQL, [False])


def create_throwaway(n: Narrator, table: str, columns: str) -> None:
    """Create a lab's own table as shop_owner, refusing to touch one that exists.

    For labs whose work must COMMIT (acid, zero-downtime): the table is
    theirs alone, and they drop it in `finally` with `drop_throwaway`. The
    app's role cannot create tables (the transactional-ddl lab shows it).
    """
    rows = n.sql("SELECT to_regclass(%s) AS existing", [table], using="owner")
    if rows[0][0] is not None:
        raise LabFailed(
            f"table {table} already exists: another run of this lab is in "
            f"progress, or one was killed. If none is running: DROP TABLE {table};"
        )
    # The name and columns are constants of the calling lab, never user input.
    n.sql(f"CREATE TABLE {table} {columns}", using="owner", label="as shop_owner")


def drop_throwaway(n: Narrator, table: str) -> None:
    n.sql(f"DROP TABLE IF EXISTS {table}", using="owner", label="clean up")


class Narrator:
    """Prints a lab's story and checks its claims."""

    def __init__(self, out=None, width: int = 100):
        self.out = out or sys.stdout
        self.width = width
        self.checks = 0

    def say(self, text: str = "") -> None:
        # One write per line, newline included: a management command's
        # OutputWrapper would add a second newline to print()'s separate one.
        self.out.write(f"{text}\n")

    def step(self, title: str) -> None:
        self.say(f"\n== {title}")

    def show_sql(self, sql: str, params=None, label: str | None = None) -> None:
        head = f"-- {label}\n" if label else ""
        # SQL written as an indented triple-quoted string reads flush left.
        body = textwrap.dedent(sql).strip()
        if params:
            shown = dict(params) if isinstance(params, Mapping) else list(params)
            body += f"\n-- params: {shown!r}"
        self.say(textwrap.indent(f"{head}{body}", "    "))

    def sql(
        self,
        sql: str,
        params=None,
        *,
        using: str = "default",
        cursor=None,
        label=None,
        limit: int = 12,
    ):
        """Show and run one statement; print (up to `limit`) and return its rows.

        None if the statement returns no result.
        """
        self.show_sql(sql, params, label)
        if cursor is None:
            with connections[using].cursor() as own:
                return self._run(own, sql, params, limit)
        return self._run(cursor, sql, params, limit)

    def act_as_staff(self, *, using: str = "default", cursor=None) -> None:
        """Act as staff for the rest of the current transaction, and show it."""
        self.sql(
            STAFF_SQL,
            [True],
            using=using,
            cursor=cursor,
            label="act as staff for this transaction (row-level security, chapter 22)",
        )

    def act_as_customer(self, customer_id: int, *, using: str = "default") -> None:
        """Act for one customer for the rest of the current transaction, and show it."""
        self.sql(
            "SELECT set_config('app.customer_id', %s, true)",
            [str(customer_id)],
            using=using,
            label="act for this customer (row-level security, chapter 22)",
        )

    def _run(self, cursor, sql, params, limit=12):
        cursor.execute(sql, params)
        if cursor.description is None:
            if cursor.rowcount >= 0:
                self.say(f"    -> {cursor.rowcount} row(s) affected")
            else:
                # DDL has no row count; the command tag says what happened.
                self.say(f"    -> {getattr(cursor, 'statusmessage', None) or 'done'}")
            return None
        columns = [c.name for c in cursor.description]
        rows = cursor.fetchall()
        self.table(columns, rows, limit=limit)
        return rows

    def table(self, columns, rows, limit: int = 12) -> None:
        shown = [
            tuple("NULL" if v is None else str(v) for v in row) for row in rows[:limit]
        ]
        widths = [len(c) for c in columns]
        for row in shown:
            widths = [max(w, len(v)) for w, v in zip(widths, row, strict=False)]
        line = "  ".join(c.ljust(w) for c, w in zip(columns, widths, strict=False))
        self.say("    -> " + line)
        for row in shown:
            cells = (v.ljust(w) for v, w in zip(row, widths, strict=False))
            self.say("       " + "  ".join(cells))
        if len(rows) > limit:
            self.say(f"       ... {len(rows) - limit} more row(s)")
        self.say(f"       ({len(rows)} row(s))")

    def expect(self, condition: bool, claim: str) -> None:
        """Check a claim the lab makes; a false claim fails the lab."""
        self.checks += 1
        if not condition:
            self.say(f"FAILED: {claim}")
            raise LabFailed(claim)
        self.say(f"ok: {claim}")

    def expect_error(
        self,
        func,
        *,
        sqlstate: str | None = None,
        contains: str | None = None,
        claim: str,
        constraint: str | None = None,
    ):
        """Run `func`; the lab fails unless it raises a database error as described.

        `constraint` is compared with the server's own report of the violated
        constraint (the error's diagnostics), not searched for in the message.
        """
        try:
            func()
        except Exception as exc:  # a database error is what the lab wants to see
            cause = getattr(exc, "__cause__", None) or exc
            state = getattr(cause, "sqlstate", None)
            message = str(cause).splitlines()[0] if str(cause) else type(cause).__name__
            diag = getattr(cause, "diag", None)
            violated = getattr(diag, "constraint_name", None)
            detail = f" [constraint {violated}]" if violated else ""
            self.say(f"    -> ERROR {state or ''}: {message}{detail}")
            ok = (
                (sqlstate is None or state == sqlstate)
                and (contains is None or contains in str(cause))
                and (constraint is None or violated == constraint)
            )
            self.expect(ok, claim)
            return cause
        self.expect(False, claim + " (but no error was raised)")

    def expect_sql_error(
        self,
        sql: str,
        params=None,
        *,
        using: str = "default",
        cursor=None,
        label=None,
        **expected,
    ):
        """Show and run `sql` in a savepoint; expect it to fail as described.

        The savepoint keeps a surrounding transaction usable after the error.
        `expected` takes `expect_error`'s keywords (claim, sqlstate, ...).
        """

        # A statement that unexpectedly succeeds is rolled back as well, so a
        # failed lab cannot leave its bad row behind.
        def attempt():
            if cursor is None:
                with transaction.atomic(using=using):
                    self.sql(sql, params, using=using, label=label)
                    transaction.set_rollback(True, using=using)
            else:
                with cursor.connection.transaction():
                    self.sql(sql, params, cursor=cursor, label=label)
                    raise psycopg.Rollback()

        return self.expect_error(attempt, **expected)


def run(name: str, out=None) -> Narrator:
    """Run one lab by name; raise LabFailed if its claims did not hold."""
    labs = discover()
    if name not in labs:
        raise KeyError(
            f"no lab named {name!r}; `python manage.py lab --list` shows them"
        )
    narrator = Narrator(out)
    narrator.say(f"# lab {name} (chapter {labs[name].chapter}): {labs[name].summary}")
    labs[name].func(narrator)
    narrator.say(f"\nlab {name}: {narrator.checks} check(s) passed")
    return narrator


def transcript(name: str) -> str:
    """Run a lab and return what it printed (for docs snapshots)."""
    buffer = io.StringIO()
    run(name, out=buffer)
    return buffer.getvalue()
