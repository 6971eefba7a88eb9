"""What several orders labs share: the rows they work on, committed under
names made from the lab's tag (_names) so that _committed_rows can delete
them; extra sessions; statements that wait for a lock; and the SQL they show.
"""

from __future__ import annotations

import re
import threading
import time
from contextlib import ExitStack, contextmanager
from decimal import Decimal

import psycopg
import sqlparse

from catalog.labs.rows import catalog_names, catalog_rows
from shop.accounts.labs import customer_email_prefix, lab_customers
from shop.lab import LabFailed, Narrator, act_as_staff_for_session, connect

ORDERS_SQL = """
INSERT INTO orders_order
    (customer_id, status, subtotal, discount, total, ship_line1, ship_line2,
     ship_city, ship_postal_code, ship_country, created_at, updated_at)
SELECT %(customer_id)s, 'pending', %(amount)s, 0, %(amount)s, '1 Lab Street', '',
       'Labville', '1000', 'US', now() - %(age)s::interval,
       now() - %(age)s::interval
FROM generate_series(1, %(count)s)
RETURNING id
"""


COUPON_SQL = """
INSERT INTO orders_coupon
    (code, percent_off, valid_from, valid_until, usage_limit, times_used, is_active)
VALUES (%(code)s, 10, now() - interval '1 day', now() + interval '1 day',
        %(usage_limit)s, %(times_used)s, true)
RETURNING id
"""

LEDGER_SQL = """
SELECT stock_level_id, on_hand_delta, reserved_delta, reason, order_id
FROM orders_stock_movement
WHERE stock_level_id = ANY(%s)
ORDER BY id
"""

READ_STOCK = "SELECT quantity_on_hand FROM catalog_stock_level WHERE id = %s"

# Children before parents; deleting a user cascades to its customer, cart and
# idempotency keys, deleting a stock row to its ledger.
CLEANUP_STATEMENTS = [
    (
        "payments",
        "DELETE FROM orders_payment WHERE order_id IN ("
        " SELECT o.id FROM orders_order AS o"
        " JOIN accounts_customer AS c ON c.id = o.customer_id"
        " JOIN accounts_user AS u ON u.id = c.user_id WHERE u.email LIKE %(email)s)",
    ),
    (
        "orders",
        "DELETE FROM orders_order WHERE customer_id IN ("
        " SELECT c.id FROM accounts_customer AS c"
        " JOIN accounts_user AS u ON u.id = c.user_id WHERE u.email LIKE %(email)s)",
    ),
    (
        "redemptions",
        "DELETE FROM orders_coupon_redemption WHERE coupon_id IN ("
        " SELECT id FROM orders_coupon WHERE code = %(code)s)",
    ),
    ("coupons", "DELETE FROM orders_coupon WHERE code = %(code)s"),
    (
        "stock rows",
        "DELETE FROM catalog_stock_level WHERE warehouse_id IN ("
        " SELECT id FROM catalog_warehouse WHERE code = %(code)s)",
    ),
    ("variants", "DELETE FROM catalog_product_variant WHERE sku LIKE %(sku)s"),
    ("products", "DELETE FROM catalog_product WHERE slug = %(slug)s"),
    ("categories", "DELETE FROM catalog_category WHERE slug = %(slug)s"),
    ("warehouses", "DELETE FROM catalog_warehouse WHERE code = %(code)s"),
    ("customers", "DELETE FROM accounts_user WHERE email LIKE %(email)s"),
]


def _names(tag: str) -> dict:
    """The names a lab's rows carry, so that they can be found and deleted.

    The catalogue's and the customers' are the ones catalog_rows and
    lab_customers give them.
    """
    names = catalog_names(tag)
    return {
        **names,
        "sku": f"{names['code']}-%",
        "email": f"{customer_email_prefix(tag)}%@example.com",
    }


def _stock_rows(n, tag, *, variants=1, on_hand=10, cursor=None, label=None):
    """A catalogue with a stock row per variant (catalog/sql/labs/catalog_rows.sql)."""
    return catalog_rows(
        n, tag, variants=variants, on_hand=on_hand, cursor=cursor, label=label
    )


def _customers(n, tag, count, *, cursor=None, label=None):
    """Insert `count` customers (shop/accounts/sql/labs/customers.sql); their ids."""
    rows = lab_customers(n, tag, count, cursor=cursor, label=label)
    return [row.customer_id for row in rows]


def _orders(n, customer_id, count, *, age="0 seconds", cursor=None, label=None):
    """Insert pending orders created `age` ago (an interval, as text)."""
    params = {
        "customer_id": customer_id,
        "amount": Decimal("19.90"),
        "age": age,
        "count": count,
    }
    return sorted(
        row[0] for row in n.sql(ORDERS_SQL, params, cursor=cursor, label=label)
    )


def _delete_lab_rows(n: Narrator, conn, tag: str, *, quiet=False) -> None:
    names = _names(tag)
    deleted = []
    with conn.transaction(), conn.cursor() as cursor:
        for what, statement in CLEANUP_STATEMENTS:
            cursor.execute(statement, names)
            if cursor.rowcount:
                deleted.append(f"{cursor.rowcount} {what}")
    if quiet:
        if deleted:
            n.say(f"    -- deleted what a killed run left behind: {', '.join(deleted)}")
        return
    n.say(f"    -- clean up, committed: deleted {', '.join(deleted) or 'nothing'}")


@contextmanager
def _committed_rows(n: Narrator, tag: str):
    """An autocommit session for the rows a lab shares between sessions.

    Yields a cursor; whatever the lab made under `tag` is deleted at the end,
    and at the start too, in case a killed run left rows behind.
    """
    with connect("default", autocommit=True) as conn:
        conn.execute("SET lock_timeout = '5s'")
        act_as_staff_for_session(conn)
        _delete_lab_rows(n, conn, tag, quiet=True)
        try:
            with conn.cursor() as cursor:
                yield cursor
        finally:
            _delete_lab_rows(n, conn, tag)


@contextmanager
def _sessions(count: int, *, lock_timeout="5s"):
    """Open `count` autocommit sessions (statements BEGIN explicitly); yield cursors."""
    with ExitStack() as stack:
        cursors = []
        for _ in range(count):
            conn = stack.enter_context(connect("default", autocommit=True))
            # A wait longer than this is a bug in the lab: fail, never hang.
            conn.execute("SELECT set_config('lock_timeout', %s, false)", [lock_timeout])
            act_as_staff_for_session(conn)
            cursors.append(conn.cursor())
        yield cursors


class _Blocked:
    """A statement run in a thread because it is going to wait for a lock."""

    def __init__(self, cursor, sql, params=None, *, rollback_on_error=False):
        self.pid = cursor.connection.info.backend_pid
        self.rollback_on_error = rollback_on_error
        self.rows = None
        self.error = None
        self.seconds = None
        self._thread = threading.Thread(
            target=self._run, args=(cursor, sql, params), daemon=True
        )
        self._thread.start()

    def _run(self, cursor, sql, params):
        begun = time.monotonic()
        try:
            cursor.execute(sql, params)
            self.rows = cursor.fetchall() if cursor.description else cursor.rowcount
        except psycopg.Error as exc:  # reported by the lab's main thread
            self.error = exc
            if self.rollback_on_error:
                # At once: the other session may be waiting for these locks.
                cursor.execute("ROLLBACK")
        self.seconds = time.monotonic() - begun

    def finish(self, timeout=15.0):
        self._thread.join(timeout)
        if self._thread.is_alive():
            raise LabFailed(f"a statement was still waiting after {timeout} s")
        return self


def _wait_until_blocked(n: Narrator, observer, pid: int, timeout=10.0) -> list:
    """Poll until session `pid` waits for a lock; show what it waits for."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        observer.execute("SELECT pg_blocking_pids(%s)", [pid])
        if observer.fetchone()[0]:
            break
        time.sleep(0.01)
    else:
        raise LabFailed(f"session {pid} was not seen waiting within {timeout} s")
    rows = n.sql(
        """
        SELECT pid, wait_event_type, wait_event, pg_blocking_pids(pid) AS blocked_by
        FROM pg_stat_activity WHERE pid = %s
        """,
        [pid],
        cursor=observer,
        label="a third session looks at the waiting one",
    )
    return rows[0][3]


def _show_captured(n: Narrator, captured) -> list[str]:
    """Print the statements Django sent, long one-liners laid out; return them."""
    statements = [q["sql"] for q in captured.captured_queries]
    for sql in statements:
        n.show_sql(_layout(sql))
    return statements


def _error_line(exc: psycopg.Error) -> str:
    line = f"    -> ERROR {exc.sqlstate}: {str(exc).splitlines()[0]}"
    if exc.diag.message_hint:
        line += f"\n       HINT: {exc.diag.message_hint}"
    return line


def _layout(sql: str) -> str:
    """Lay out a one-line statement from Django over several lines, for reading."""
    statement = sql.lstrip().upper()
    if len(sql) <= 100 or "\n" in sql:
        return sql
    if " FROM " not in statement and not statement.startswith(("INSERT", "UPDATE")):
        return sql  # a list of function calls reads better on one line
    laid_out = sqlparse.format(sql, reindent=True, wrap_after=88)
    return re.sub(r"\bFOR\s+UPDATE\b", "FOR UPDATE", laid_out)
