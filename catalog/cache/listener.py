"""LISTEN catalog_changed: the writes Python never sees, turned into new versions.

`manage.py cache_listen` runs `listen()` in a process of its own
(scripts/services.sh starts it with the Celery worker); tests run it in a
thread. PostgreSQL delivers a notification to the sessions listening when
the writing transaction commits, and to nobody else: one sent while no
session listened is lost. So whenever the listener (re)connects, and
whenever Redis failed it, it retires everything first, then takes each
notification as it comes.
"""

import logging
import threading

import dj_database_url
import psycopg
from django.conf import settings
from django.db import connections

from catalog.cache.invalidation import EVERYTHING, Change, versions_bump
from catalog.cache.store import Unavailable

log = logging.getLogger("catalog.cache")

CHANNEL = "catalog_changed"
# Seconds between two looks at `stop` while no notification comes.
POLL = 1.0
# Seconds before connecting again after the primary went away: doubled on
# each failure up to the cap, so an outage is not a flood of attempts.
RECONNECT_FIRST, RECONNECT_MAX = 0.5, 10.0
# An idle LISTEN session notices a primary gone from the network within
# seconds (libpq's keepalive options), not the system's minutes.
KEEPALIVES = {
    "keepalives": 1,
    "keepalives_idle": 5,
    "keepalives_interval": 2,
    "keepalives_count": 3,
}


def listen_params(alias: str = "default") -> dict:
    """psycopg.connect's arguments for the LISTEN session: `alias`'s, directly.

    A LISTEN is a session's: through pgbouncer in transaction mode
    (DATABASE_VIA_PGBOUNCER) the server connection goes to another client
    after each transaction, and the notifications with it. So the session
    goes to the primary itself, as `alias`'s role and database.
    """
    params = {
        name: value
        for name, value in connections[alias].get_connection_params().items()
        # Django's adapters and cursor class: this session reads no rows.
        if name not in {"cursor_factory", "context", "prepare_threshold"}
    }
    if getattr(settings, "DATABASE_VIA_PGBOUNCER", False):
        direct = dj_database_url.parse(settings.DATABASE_URL)
        params.update(host=direct["HOST"], port=direct["PORT"])
    return {**params, **KEEPALIVES}


class Listener:
    """Apply catalog_changed notifications to the cache until `stop` is set.

    `ready` is set once the session listens and everything has been retired
    for the time nobody listened. `applied` counts the notifications applied,
    for tests that wait for one.
    """

    def __init__(self, *, alias: str = "default"):
        self.alias = alias
        self.stop = threading.Event()
        self.ready = threading.Event()
        self.applied = 0
        self._owed = True  # everything must be retired before anything else

    def run(self) -> None:
        delay = RECONNECT_FIRST
        while not self.stop.is_set():
            try:
                with psycopg.connect(
                    **listen_params(self.alias), autocommit=True
                ) as conn:
                    conn.execute(f"LISTEN {CHANNEL}")
                    log.info("catalog cache: listening on %s", CHANNEL)
                    self._owed = True
                    self._settle()
                    self.ready.set()
                    delay = RECONNECT_FIRST
                    self._serve(conn)
            except psycopg.Error as exc:
                self.ready.clear()
                log.warning(
                    "catalog cache: the LISTEN session failed (%s); connecting "
                    "again in %.1fs",
                    exc,
                    delay,
                )
                self.stop.wait(delay)
                delay = min(delay * 2, RECONNECT_MAX)

    def _serve(self, conn) -> None:
        while not self.stop.is_set():
            for notification in conn.notifies(timeout=POLL):
                self._apply(Change.from_payload(notification.payload))
                if self.stop.is_set():
                    return
            self._settle()

    def _settle(self) -> None:
        """Retire everything if a notification may have been lost."""
        if self._owed:
            self._apply(EVERYTHING)

    def _apply(self, change: Change) -> None:
        if self._owed and change is not EVERYTHING:
            return  # the debt retires this one too, once Redis answers
        try:
            versions_bump(change)
        except Unavailable as exc:
            if not self._owed:
                log.warning(
                    "catalog cache: Redis did not take a change (%s); everything "
                    "will be retired once it answers",
                    exc,
                )
            self._owed = True
            return
        self._owed = False
        self.applied += 1


def start_in_thread(*, alias: str = "default") -> Listener:
    """A listener in a daemon thread (tests, the lab); stop it with `.stop.set()`."""
    listener = Listener(alias=alias)
    threading.Thread(
        target=_run_closing, args=(listener,), name="cache-listen", daemon=True
    ).start()
    return listener


def _run_closing(listener: Listener) -> None:
    try:
        listener.run()
    finally:
        # The thread's Django connections (those of the version bumps' markers).
        connections.close_all()
