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

The replica's pools must not wait at all for a server that refuses them:
their readers can read the primary instead, and a stopped replica must cost
a request milliseconds (the reason it used to be unpooled). A pool with
`refused_fast` (shop/settings/base.py: databases()) remembers whether its
latest connection attempt failed; while it did and no idle connection is
left, a request gets that error at once, and starts a new attempt for the
requests after it. Its other waits are bounded by its own short timeout.

A pool keeps the connection parameters it was built with, so a pool whose
settings moved since (a test's mirror database, a forwarder's port) is
closed and built again from the settings the next time it is asked for.
"""

import contextlib
import threading
import time

import psycopg
from django.core.exceptions import ImproperlyConfigured
from django.db.backends.base.base import NO_DB_ALIAS
from django.db.backends.postgresql import base
from psycopg_pool import ConnectionPool, PoolTimeout

# What identifies where a pool connects: a change rebuilds the pool.
TARGET_KEYS = ("NAME", "USER", "PASSWORD", "HOST", "PORT")
# Seconds between two looks, while a refused_fast pool's request waits, at
# whether the attempt it waits for has failed: what the first request to a
# stopped server costs at most.
REFUSAL_POLL = 0.05
_building = threading.Lock()


class DatabaseWrapper(base.DatabaseWrapper):
    @property
    def pool(self):
        options = self.settings_dict["OPTIONS"].get("pool")
        if (
            options
            and self.settings_dict["CONN_HEALTH_CHECKS"]
            and self.alias != NO_DB_ALIAS
        ):
            target = tuple(self.settings_dict[key] for key in TARGET_KEYS)
            current = self._connection_pools.get(self.alias)
            if current is None or getattr(current, "target", target) != target:
                self._build_pool(target, {} if options is True else options)
        # Django's property returns the pool registered here and builds none
        # of its own.
        return super().pool

    def _build_pool(self, target, options):
        # Under a lock: two threads may race to build it, and the loser's
        # pool would never be closed.
        with _building:
            current = self._connection_pools.get(self.alias)
            if current is not None and getattr(current, "target", target) == target:
                return
            pool = self._sweeping_pool(options)
            pool.target = target
            self._connection_pools[self.alias] = pool
        if current is not None:
            # Connections still in use go back to the closed pool, which
            # closes them.
            current.close(timeout=1)

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

        pool = ShopPool(
            # Autocommit as Django's: Django sets the mode it wants later.
            kwargs={**self.get_connection_params(), "autocommit": True},
            open=False,  # opened by the first connection, as Django's
            configure=self._configure_connection,
            check=check,
            reconnect_failed=reconnect_while_requests_wait,
            **{"name": self.alias, **options},
        )
        return pool


class ShopPool(ConnectionPool):
    """psycopg_pool's pool, which may refuse at once what its server refuses.

    With refused_fast=False it is exactly ConnectionPool.
    """

    def __init__(self, *args, refused_fast: bool = False, **kwargs):
        self.refused_fast = refused_fast
        # The error of the latest connection attempt, None once one succeeds.
        self.refusal: Exception | None = None
        if refused_fast:
            kwargs["connection_class"] = _watched_connection_class(self)
        super().__init__(*args, **kwargs)

    def getconn(self, timeout: float | None = None):
        if not self.refused_fast:
            return super().getconn(timeout)
        timeout = self.timeout if timeout is None else timeout
        deadline = time.monotonic() + timeout
        while True:
            self._refuse_if_refused()
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise PoolTimeout(f"couldn't get a connection after {timeout:.2f} sec")
            try:
                # In short waits: the attempt that would serve this request
                # may fail meanwhile, and then waiting on is pointless.
                return super().getconn(min(remaining, REFUSAL_POLL))
            except PoolTimeout:
                continue

    def _refuse_if_refused(self) -> None:
        refusal = self.refusal
        if refusal is None or self.get_stats().get("pool_available"):
            return
        # A new attempt unless one runs, so that the server's return is
        # noticed by the requests that come after this one.
        self.check()
        raise psycopg.OperationalError(
            f"the server of pool {self.name!r} refused its latest connection "
            f"attempt, so the pool does not wait for one: {refusal}"
        ) from refusal


def _watched_connection_class(pool: ShopPool) -> type[psycopg.Connection]:
    """A connection class that tells `pool` how each connection attempt went."""

    class WatchedConnection(psycopg.Connection):
        @classmethod
        def connect(cls, *args, **kwargs):
            try:
                connection = super().connect(*args, **kwargs)
            except psycopg.OperationalError as error:
                pool.refusal = error
                raise
            pool.refusal = None
            return connection

    return WatchedConnection


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
