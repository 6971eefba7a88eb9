"""Database helpers for tests that need more than one connection."""

from contextlib import contextmanager

from django.db import connections

from shop import replica

# Transactional tests list `owner` too: Django never flushes a mirror, so
# without it rows written through `default` would leak into the next test.
ALL_DATABASES = ["default", "owner", "replica", "loader"]


def wait_for_replica(timeout=10.0):
    """Block until the replica has replayed everything the primary has written."""
    replica.wait_for_replay(timeout)


def as_staff():
    """Act as staff in test code: row-level security shows every customer's rows.

    Tests read and write customer-owned tables through the app's own role,
    so without a context they would see nothing, exactly like the app. The
    block restores the context it found (shop/db_context.py), so a missing
    context in the code under test still shows.
    """
    from shop.db_context import staff_transaction

    return staff_transaction(lock_timeout=None, statement_timeout=None)


@contextmanager
def session_as_staff(using: str = "default"):
    """Act as staff for the whole session of `using`, until the block ends.

    For transactional tests that check rows someone else committed (the
    seed, a worker): their reads run in autocommit, one transaction each, so
    a transaction-local context would not outlive the first. A session-level
    setting does, which is exactly why the app never uses one (chapter 22);
    the block clears it again, and the app's own transactions still set
    their own context over it.
    """
    with connections[using].cursor() as cursor:
        cursor.execute("SELECT set_config('app.is_staff', 'on', false)")
    try:
        yield
    finally:
        with connections[using].cursor() as cursor:
            cursor.execute("SELECT set_config('app.is_staff', '', false)")


def outbox_clear() -> None:
    """Delete every outbox event and counter, committed, as the owner.

    For the outbox's tests, which read "every event": a module that commits
    rows of its own (tests/catalog/test_indexes.py) leaves their events
    behind, since the flush after a transactional test comes only after it.
    """
    with connections["owner"].cursor() as cursor:
        cursor.execute("SELECT set_config('app.job', 'tests', false)")
        cursor.execute("DELETE FROM shop_outbox_event")
        cursor.execute("DELETE FROM shop_outbox_sequence")
        cursor.execute("SELECT set_config('app.job', '', false)")
