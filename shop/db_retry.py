"""Retry a whole transaction when PostgreSQL asks for it.

Under SERIALIZABLE a transaction may fail with 40001 (serialization_failure)
and any transaction may be chosen as a deadlock victim (40P01). Both mean
"nothing happened, run me again": the right answer is to re-run the *whole*
transaction, a bounded number of times, with random (jittered) waits so the
contenders do not collide again in lockstep.
"""

import random
import time

from django.db import OperationalError, connections

RETRYABLE_SQLSTATES = {"40001", "40P01"}
# Errors that mean "the database is busy right now": retrying later may work.
BUSY_SQLSTATES = RETRYABLE_SQLSTATES | {"55P03", "57014"}


def sqlstate(exc: BaseException) -> str | None:
    """The SQLSTATE of a database error, through Django's wrapper."""
    return getattr(exc.__cause__, "sqlstate", None) or getattr(exc, "sqlstate", None)


MAX_DELAY = 0.25


def backoff(attempt: int, base_delay: float = 0.02) -> None:
    """Sleep a random time, growing with the attempt, capped at MAX_DELAY."""
    time.sleep(random.uniform(0, min(MAX_DELAY, base_delay * 2**attempt)))


def retry_on_conflict(
    func,
    *,
    attempts: int = 5,
    base_delay: float = 0.02,
    using="default",
    retry_on=RETRYABLE_SQLSTATES,
):
    """Call `func` (which opens its own transaction); re-run it on 40001/40P01.

    `retry_on` widens the set, e.g. to BUSY_SQLSTATES for work that must not
    give up on a lock timeout (checkout's phase 3, after the money moved).
    """
    if connections[using].in_atomic_block:
        raise RuntimeError(
            "retry_on_conflict must wrap the whole transaction: "
            "call it outside transaction.atomic()."
        )
    for attempt in range(1, attempts + 1):
        try:
            return func()
        except OperationalError as exc:
            if sqlstate(exc) not in retry_on or attempt == attempts:
                raise
            backoff(attempt, base_delay)
    raise AssertionError("unreachable")
