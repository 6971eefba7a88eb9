"""Which tables the seed owns: is there data in them, and wiping them for --reset.

The tables are the ones the apps' phases declare (phases.py), so a new
phase is covered by --if-empty and --reset without a change here.
"""

from django.db import OperationalError, connections, transaction
from psycopg import errors, sql

from .phases import discover, seeded_models

RESET_LOCK_TIMEOUT = "5s"


class ResetBlocked(Exception):
    """TRUNCATE could not get its locks: another session is using the tables."""


def tables_with_rows(using: str = "loader") -> list[str]:
    """Return the seeded tables that hold at least one row.

    As shop_loader, which row-level security does not filter: shop_app,
    acting for nobody, would see no order or address and call the shop empty.
    """
    return [
        model._meta.db_table
        for model in seeded_models()
        if model.objects.using(using).exists()
    ]


def truncate_seeded_tables(using: str = "owner") -> None:
    """Empty every seeded table, and what points at them, and restart their ids.

    Runs as shop_owner: TRUNCATE is not a right shop_app has, by design.
    CASCADE also empties tables that reference these (auth tokens, carts,
    idempotency keys, the stock ledger), which is what a reset of demo data
    means. RESTART IDENTITY makes a reseed hand out the same ids as the
    first seed, for the cascaded tables too.

    Then, once the TRUNCATE has committed, each phase's `on_reset` forgets
    what the phase wrote outside these tables about their rows: a phase
    knows its own, this module names no app's tables.
    """
    # The outbox goes too: its events and counters describe the rows being
    # emptied, and ids restart, so a new order 1 must not continue the old
    # one's history. (A MongoDB event log keeps the old events: drop its
    # database as well for a clean start.)
    tables = [model._meta.db_table for model in seeded_models()]
    tables += ["shop_outbox_event", "shop_outbox_sequence"]
    statement = sql.SQL("TRUNCATE {tables} RESTART IDENTITY CASCADE").format(
        tables=sql.SQL(", ").join(sql.Identifier(table) for table in tables)
    )
    try:
        with transaction.atomic(using=using), connections[using].cursor() as cursor:
            # TRUNCATE waits for every open transaction on these tables; fail
            # fast with advice instead of hanging behind a forgotten shell.
            cursor.execute(
                "SELECT set_config('lock_timeout', %s, true)", [RESET_LOCK_TIMEOUT]
            )
            cursor.execute(statement.as_string(cursor.connection))
    except OperationalError as exc:
        if not isinstance(exc.__cause__, errors.LockNotAvailable):
            raise
        raise ResetBlocked(
            f"--reset waited {RESET_LOCK_TIMEOUT} for locks on the seeded tables "
            f"({exc}). Stop the sessions using them (runserver, Celery workers, "
            "shells) and run the command again."
        ) from exc
    for phase in discover():
        if phase.on_reset is not None:
            phase.on_reset()
