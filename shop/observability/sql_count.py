"""Count the SQL statements a request runs, and their time, on every alias."""

import time
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass

from django.db import connections


@dataclass
class SqlTally:
    """Statements run and seconds spent in them; a Django execute wrapper."""

    count: int = 0
    seconds: float = 0.0

    def __call__(self, execute, sql, params, many, context):
        started = time.perf_counter()
        try:
            return execute(sql, params, many, context)
        finally:
            self.count += 1
            self.seconds += time.perf_counter() - started


@contextmanager
def sql_counted():
    """Count what runs in this block on every alias's connection of this thread.

    The wrapper goes on each alias's DatabaseWrapper, which Django keeps per
    thread, not on a database connection: installing it connects nothing,
    so an alias the request never touches costs nothing, and a pooled
    connection handed to the next request carries no wrapper with it. Work
    done in another thread (the replica's lag probe, the payment gateway's
    own connection) or on a connection opened outside Django (/healthz's
    probe of the primary, the top statements' read as shop_monitor) is not
    counted.
    """
    tally = SqlTally()
    with ExitStack() as stack:
        for alias in connections:
            stack.enter_context(connections[alias].execute_wrapper(tally))
        yield tally
