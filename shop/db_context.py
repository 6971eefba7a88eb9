"""The one way to open a transaction that touches customer-owned rows.

Every such transaction starts by saying who is acting, in *transaction-local*
settings (`set_config(name, value, true)`) that vanish at COMMIT or ROLLBACK,
so a pooled connection handed to the next request can never carry this
one's identity along. The row-level security policies
(each app's sql/rls/row_level_security_v01.sql, chapter 22) read them:

    customer_transaction(id)   one customer's rows
    staff_transaction()        every customer's rows (admin, staff API)
    job_transaction(name)      the rows a background job may touch (recovery)

A transaction that opened none of them acts for nobody and sees no
customer-owned row at all. Every context sets all three settings, so one
can never inherit part of another. The stock ledger and the audit trail
(app.user_id, app.order_id, app.stock_reason) read the same settings.

The settings cost a round trip of their own (a SELECT of set_config()
calls) unless a statement the transaction sends anyway carries them:
customer_transaction(..., in_first_statement=True) sends none, and its
first statement sets them from `Context.params`; customer_statement() is
the same for one statement that runs alone, in autocommit, a transaction
of its own. That statement sets them before it reads a guarded row, in one
of two ways the planner cannot reorder:

    INSERT ... SELECT ... FROM (<the settings>) AS context
        the new row is built from the settings' row, and the policies
        check it afterwards (orders/sql/queries/idempotency_claim_v02.sql)
    SELECT ... FROM (<the settings>) AS context,
        LATERAL (SELECT ... WHERE context.settings IS NOT NULL ...) AS ...
        the guarded read depends on the settings' row, so it runs after
        it (orders/sql/queries/cart_lock_v01.sql)

where <the settings> is

    SELECT count(set_config(name, value, true)) AS settings
    FROM unnest(%(setting_names)s::text[], %(setting_values)s::text[])
        AS setting (name, value)

A plain join of the settings' row with a guarded table would not do: the
planner may scan the table first, before anyone acts. A statement that
forgets the settings acts for nobody and sees nothing, as above. Within
that first statement, lock_timeout already bounds the lock waits that
follow set_config(); statement_timeout bounds only the statements after it
(the first runs under the role's own, 30 s: scripts/sql/roles.sql).
"""

from contextlib import contextmanager
from dataclasses import dataclass

from django.db import connections, transaction

# A stuck lock fails fast with a clear error instead of hanging a request.
DEFAULT_LOCK_TIMEOUT = "2s"
DEFAULT_STATEMENT_TIMEOUT = "10s"
# Keywords, not values: they come from this table, never from input.
ISOLATION_LEVELS = {
    "read committed": "SET TRANSACTION ISOLATION LEVEL READ COMMITTED",
    "repeatable read": "SET TRANSACTION ISOLATION LEVEL REPEATABLE READ",
    "serializable": "SET TRANSACTION ISOLATION LEVEL SERIALIZABLE",
}


@dataclass(frozen=True)
class Context:
    """The settings of one context, for a statement that sets them itself."""

    settings: dict[str, str]

    @property
    def params(self) -> dict[str, list[str]]:
        """The query parameters of <the settings> (the module's docstring)."""
        return {
            "setting_names": list(self.settings),
            "setting_values": list(self.settings.values()),
        }


def set_locals(settings: dict[str, str], *, using: str = "default") -> None:
    """Set several transaction-local settings in one round trip."""
    calls = ", ".join(["set_config(%s, %s, true)"] * len(settings))
    params = [item for pair in settings.items() for item in pair]
    with connections[using].cursor() as cursor:
        cursor.execute(f"SELECT {calls}", params)  # placeholders only, no values


def _swap_locals(settings: dict[str, str], using: str) -> dict[str, str]:
    """Set transaction-local settings and return their previous values, in one
    round trip. The OFFSET 0 subquery is read first (the outer row is built
    from it), so the old values are taken before any set_config() runs."""
    names = list(settings)
    reads = ", ".join(f"current_setting(%s, true) AS old{i}" for i in range(len(names)))
    calls = ", ".join(["set_config(%s, %s, true)"] * len(names))
    old_columns = ", ".join(f"old{i}" for i in range(len(names)))
    # In the order the placeholders appear: the outer calls, then the reads.
    params = [*(item for pair in settings.items() for item in pair), *names]
    with connections[using].cursor() as cursor:
        cursor.execute(
            f"SELECT {old_columns}, {calls} FROM (SELECT {reads} OFFSET 0) AS old",
            params,
        )
        row = cursor.fetchone()
    return {name: row[i] or "" for i, name in enumerate(names)}


def _settings(context, lock_timeout, statement_timeout, user_id=None):
    settings = dict(context)
    # Left unset when unknown, not set empty: a caller that names no user
    # sends exactly the statement it always sent.
    if user_id is not None:
        settings["app.user_id"] = str(user_id)
    if lock_timeout:
        settings["lock_timeout"] = lock_timeout
    if statement_timeout:
        settings["statement_timeout"] = statement_timeout
    return settings


@contextmanager
def _acting_as(
    settings: dict[str, str],
    using,
    isolation=None,
    in_first_statement=False,
):
    # Nested in a transaction that is already open (a savepoint), the
    # settings would outlive this block: RELEASE SAVEPOINT keeps what
    # set_config(..., true) did until the outer COMMIT. So a nested context
    # puts the outer one back on the way out, and code after the block acts
    # for whoever it acted for before, exactly as after a COMMIT. (On an
    # exception, ROLLBACK TO SAVEPOINT undoes the settings by itself.) It
    # also sets them at once, even when the first statement would: the swap
    # is what reads the outer values.
    nested = connections[using].in_atomic_block
    if isolation and nested:
        raise ValueError("an isolation level is chosen only by the outermost block")
    with transaction.atomic(using=using):
        if isolation:
            # Before any other statement: the level is fixed by the first one.
            with connections[using].cursor() as cursor:
                cursor.execute(ISOLATION_LEVELS[isolation])
        if nested:
            previous = _swap_locals(settings, using)
        elif not in_first_statement:
            set_locals(settings, using=using)
        yield Context(settings)
        if nested:
            set_locals(previous, using=using)


def _customer(customer_id: int) -> dict[str, str]:
    return {
        "app.customer_id": str(customer_id),
        "app.is_staff": "off",
        "app.job": "",
    }


def customer_transaction(
    customer_id: int,
    *,
    user_id: int | None = None,
    using: str = "default",
    lock_timeout: str | None = DEFAULT_LOCK_TIMEOUT,
    statement_timeout: str | None = DEFAULT_STATEMENT_TIMEOUT,
    in_first_statement: bool = False,
):
    """Open a transaction acting for one customer, with bounded lock waits.

    `user_id` (the logged-in user) only labels the audit trail's entries.
    With `in_first_statement`, no statement of its own sets the context:
    the block's first statement does, with the `Context` it is given (the
    module's docstring says how).
    """
    settings = _settings(
        _customer(customer_id), lock_timeout, statement_timeout, user_id
    )
    return _acting_as(settings, using, in_first_statement=in_first_statement)


@contextmanager
def customer_statement(
    customer_id: int,
    *,
    user_id: int | None = None,
    using: str = "default",
    lock_timeout: str | None = DEFAULT_LOCK_TIMEOUT,
    statement_timeout: str | None = DEFAULT_STATEMENT_TIMEOUT,
    wait_for_disk: bool = True,
):
    """Act for one customer in one statement, which sets the context itself.

    In autocommit a single statement is a transaction of its own: no BEGIN,
    no COMMIT, and its settings end with it. So the block runs exactly one
    statement, with the `Context` it is given (the module's docstring);
    a second one would run as nobody. Inside an open transaction the
    statement would join it, and its settings outlive it: there the block is
    a nested customer_transaction, which gives the outer context back.

    `wait_for_disk=False` commits without waiting for the WAL to reach the
    disk (synchronous_commit off, for this transaction only): a crash in the
    next fraction of a second may lose it, and nothing else. Only for a
    statement that a later synchronous commit of the same request makes
    durable anyway (WAL is flushed in order), and whose loss before that
    harms nothing; the caller says why.
    """
    if connections[using].in_atomic_block:
        with customer_transaction(
            customer_id,
            user_id=user_id,
            using=using,
            lock_timeout=lock_timeout,
            statement_timeout=statement_timeout,
            in_first_statement=True,
        ) as context:
            yield context
        return
    settings = _settings(
        _customer(customer_id), lock_timeout, statement_timeout, user_id
    )
    if not wait_for_disk:
        settings["synchronous_commit"] = "off"
    yield Context(settings)


def staff_transaction(
    *,
    user_id: int | None = None,
    using: str = "default",
    lock_timeout: str | None = DEFAULT_LOCK_TIMEOUT,
    statement_timeout: str | None = DEFAULT_STATEMENT_TIMEOUT,
    isolation: str | None = None,
):
    """Open a transaction acting as staff (all customers' rows), with bounded waits.

    Explicit, never implied by a missing customer id: a transaction that set
    nothing acts for nobody. `user_id` (the staff member) only labels the
    audit trail's entries. `isolation` ("serializable", ...) sets the level.
    """
    context = {"app.customer_id": "", "app.is_staff": "on", "app.job": ""}
    settings = _settings(context, lock_timeout, statement_timeout, user_id)
    return _acting_as(settings, using, isolation)


def job_transaction(
    name: str,
    *,
    using: str = "default",
    lock_timeout: str | None = DEFAULT_LOCK_TIMEOUT,
    statement_timeout: str | None = DEFAULT_STATEMENT_TIMEOUT,
):
    """Open a transaction acting as the background job `name`.

    A job sees only the tables whose policies admit jobs (orders, their
    lines, payments, keys and coupon redemptions, carts): no address, and
    it may write no review (reviews are public to read). Narrower than staff.
    The name stays in app.job for the transaction, for anyone debugging it.
    """
    if not name:
        raise ValueError("a job context needs the job's name")
    context = {"app.customer_id": "", "app.is_staff": "off", "app.job": name}
    return _acting_as(_settings(context, lock_timeout, statement_timeout), using)
