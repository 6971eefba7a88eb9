"""Django's PostgreSQL backend whose pool sweeps itself after a restart.

Django builds psycopg_pool's pool with check=ConnectionPool.check_connection
when CONN_HEALTH_CHECKS is on, so every connection is tried (one empty
round trip) before it is handed out. That alone does not survive a
restart: a getconn() that meets several dead connections in a row sleeps
between the failed checks with exponential backoff (0, 1, 2, 4, ... s).
With eight idle connections killed at once, the first request after a
restart spent 13 s discarding them and then failed with PoolTimeout, a
503 (measured with tests/shop/test_pool.py's scenario).

A restart or failover kills every idle connection together, so the first
dead one is taken as the sign: the check then sweeps the pool with
ConnectionPool.check(), which tries each idle connection without waiting
between them and replaces the dead ones, before it reports the failure.
The pool's retry after a first failed check does not wait, so the request
that met the dead connection gets a live one at once.

A restart also leaves a gap in which the server refuses every connection.
psycopg_pool retries a refused connection in the background with
exponential backoff (1, 2, 4, 8 ... s) for `reconnect_timeout` seconds, so
its next try may come long after the server is back, while every request
waits out the pool's timeout and answers 503: after a 20 s outage the shop
served again only 8 s after the server's return, and an 8 s outage failed
every request made during it (tests/shop/test_pool.py's forwarder tests).
The settings cut each attempt off after a couple of seconds
(DATABASE_POOL_RECONNECT_TIMEOUT), which bounds the backoff to about a
second, and `reconnect_failed` below starts the next attempt at once while
any request is still waiting. Nobody waiting, nobody retries: a pool left
idle by an outage connects again on the next request.
"""

import contextlib

from django.core.exceptions import ImproperlyConfigured
from django.db.backends.base.base import NO_DB_ALIAS
from django.db.backends.postgresql import base
from psycopg_pool import ConnectionPool


class DatabaseWrapper(base.DatabaseWrapper):
    @property
    def pool(self):
        options = self.settings_dict["OPTIONS"].get("pool")
        if (
            options
            and self.settings_dict["CONN_HEALTH_CHECKS"]
            and self.alias != NO_DB_ALIAS
            and self.alias not in self._connection_pools
        ):
            # Django's property returns the pool registered here and builds
            # none of its own. setdefault: two threads may race to build it.
            self._connection_pools.setdefault(
                self.alias, self._sweeping_pool({} if options is True else options)
            )
        return super().pool

    def _sweeping_pool(self, options):
        """The pool Django would build, with the sweeping check for its own."""
        if self.settings_dict.get("CONN_MAX_AGE", 0) != 0:
            raise ImproperlyConfigured(
                "Pooling doesn't support persistent connections."
            )
        pool = None

        def check(connection):
            try:
                ConnectionPool.check_connection(connection)
            except Exception:
                # check() tries the idle connections with check_connection,
                # not with this function, so this does not recurse.
                with contextlib.suppress(Exception):
                    pool.check()
                raise

        pool = ConnectionPool(
            # Autocommit as Django's: Django sets the mode it wants later.
            kwargs={**self.get_connection_params(), "autocommit": True},
            open=False,  # opened by the first connection, as Django's
            configure=self._configure_connection,
            check=check,
            reconnect_failed=reconnect_while_requests_wait,
            **options,
        )
        return pool


def reconnect_while_requests_wait(pool: ConnectionPool) -> None:
    """Start a new attempt to connect at once if a request waits for one.

    psycopg_pool calls this from its worker when an attempt gave up after
    reconnect_timeout seconds; on its own it would try again only when the
    next request arrives. check() is its public way to grow the pool (it
    starts one attempt unless one is running); the idle connections it also
    tries are none while requests wait.
    """
    if not pool.closed and pool.get_stats().get("requests_waiting"):
        pool.check()
