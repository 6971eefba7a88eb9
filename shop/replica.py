"""Where reads go: the primary, or its streaming replica (chapter 18).

Writes always go to the primary. A read goes to the replica only when three
things hold, and this module holds all three:

- The request may read stale data. shop/middleware.py's
  ReadReplicaMiddleware decides that once per request (an anonymous catalog
  read, say) and says so with `request_reads()`; the router
  (shop/db_routers.py) asks `read_alias()` for every query. Outside a
  request (a shell, a Celery task, a migration) reads go to the primary.
- Nobody needs to read their own write. `mark_written(*scopes)` leaves
  markers in the cache (Redis) for READ_YOUR_WRITES_SECONDS, per client
  ("user:42", "session:<key>") or per piece of data (the catalog cache marks
  each version it moves, and its fills ask: catalog/cache/reads.py);
  `written_recently(*scopes)` and `written_among(scopes)` ask for them. When
  Redis cannot answer, every scope counts as written: reading the primary
  is never wrong.
- The replica answers and is not too far behind. `replica_status()` is the
  verdict of a probe that runs at most every REPLICA_CHECK_SECONDS, in a
  thread of its own, so no request waits for it and a stopped replica costs
  requests nothing; a verdict gone stale (an idle process, a probe that
  hangs) counts as no verdict, and reads go to the primary.

Two blocks override the request's choice: `reads_from_primary()` (every read
inside goes to `default`) and `staff_report_transaction()` (a staff report's
reads go to `readonly`, the replica as shop_readonly, under a staff context).
And inside a transaction on `default` every read goes there too: the
transaction must see its own writes, and its row-level security context and
locks live on that connection.
"""

import logging
import math
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field

from django.conf import settings
from django.core.cache import cache
from django.db import connections

from shop.cache import REDIS_ERRORS
from shop.db_context import staff_transaction
from shop.sql_files import read_sql

log = logging.getLogger(__name__)

PRIMARY = "default"
REPLICA = "replica"
READONLY = "readonly"
# The aliases on the standby: a request that read there and failed may be
# answered again from the primary (shop/middleware.py).
STANDBYS = (REPLICA, READONLY)

PRIMARY_POSITION_SQL = "shop/sql/queries/replica_primary_position_v01.sql"
REPLICA_POSITION_SQL = "shop/sql/queries/replica_position_v01.sql"
# Seconds replica_status(wait=True) waits for a probe: enough for the
# replica's pool to give up on a server that does not answer
# (DATABASE_REPLICA_POOL_TIMEOUT), with room to spare.
PROBE_WAIT = 2
# A report scans much more than a request reads: three times the statement
# timeout of staff_transaction(), and no lock timeout, since it only reads.
REPORT_STATEMENT_TIMEOUT = "30s"
MARKER_PREFIX = "replica:written:"


# --- Per request: where its reads go --------------------------------------


@dataclass
class RequestReads:
    """Where one request's reads go, and the standbys they were sent to."""

    alias: str
    standbys: set[str] = field(default_factory=set)


_request: ContextVar[RequestReads | None] = ContextVar("request_reads", default=None)
_primary_only: ContextVar[bool] = ContextVar("reads_from_primary", default=False)
_report: ContextVar[str | None] = ContextVar("staff_report_alias", default=None)


@contextmanager
def request_reads(alias: str) -> Iterator[RequestReads]:
    """Send the reads of the request being served to `alias` until the block ends.

    A context variable, not a thread-local: each request (each thread under
    WSGI, each task under ASGI) sees only its own choice.
    """
    reads = RequestReads(alias, {alias} if alias in STANDBYS else set())
    token = _request.set(reads)
    try:
        yield reads
    finally:
        _request.reset(token)


@contextmanager
def reads_from_primary() -> Iterator[None]:
    """Send every read inside the block to the primary, whatever the request chose."""
    token = _primary_only.set(True)
    try:
        yield
    finally:
        _primary_only.reset(token)


def read_alias() -> str:
    """The alias a read made now goes to; the router's whole answer.

    A staff report comes first: its staff context is set on its own alias,
    and a read elsewhere would act for nobody.
    """
    report = _report.get()
    if report is not None:
        return report
    reads = _request.get()
    if _primary_only.get() or reads is None or reads.alias == PRIMARY:
        return PRIMARY
    if connections[PRIMARY].in_atomic_block:
        return PRIMARY
    return reads.alias


# --- Read-your-writes markers ----------------------------------------------

# Until this time.monotonic() value, every scope counts as written: this
# process could not read or leave a marker, so markers left around that time
# (by it, or by another process meeting the same outage) may be missing.
_markers_unknown_until = 0.0


def _marker(scope: str) -> str:
    return f"{MARKER_PREFIX}{scope}"


def _markers_lost(exc: Exception) -> None:
    global _markers_unknown_until
    first = time.monotonic() >= _markers_unknown_until
    _markers_unknown_until = time.monotonic() + settings.READ_YOUR_WRITES_SECONDS
    if first:
        log.warning(
            "read-your-writes markers unavailable (%s): reads go to the primary "
            "until the cache has answered for READ_YOUR_WRITES_SECONDS (%ss)",
            exc,
            settings.READ_YOUR_WRITES_SECONDS,
        )


def marker_keys(*scopes: str) -> list[str]:
    """The cache's own keys for the markers of `scopes`, to set from a script.

    A marker is any value under such a key that expires after
    READ_YOUR_WRITES_SECONDS; written_among() reads them back.
    """
    return [cache.make_key(_marker(scope)) for scope in scopes]


def markers_failed(exc: Exception) -> None:
    """Markers that were due could not be left: read the primary meanwhile."""
    _markers_lost(exc)


def mark_written(*scopes: str) -> None:
    """Have readers of `scopes` read the primary for READ_YOUR_WRITES_SECONDS.

    Call it once the write has committed. All the markers go in one round
    trip (django-redis's set_many is a pipeline). It never raises: when
    Redis cannot take them, this process reads the primary for the whole
    window instead (written_recently() says so), which is the same promise.
    """
    if not scopes:
        return
    try:
        cache.set_many(
            {_marker(scope): 1 for scope in scopes},
            timeout=settings.READ_YOUR_WRITES_SECONDS,
        )
    except REDIS_ERRORS as exc:
        _markers_lost(exc)


def written_recently(*scopes: str) -> bool:
    """Whether any of `scopes` was written in the last READ_YOUR_WRITES_SECONDS.

    True, too, whenever that cannot be told (Redis down, or down within the
    window): a wrong True costs a read on the primary, a wrong False shows a
    client data older than its own write.
    """
    if time.monotonic() < _markers_unknown_until:
        return True
    if not scopes:
        return False
    return bool(written_among(scopes))


def written_among(scopes) -> set[str]:
    """The scopes among `scopes` written in the last READ_YOUR_WRITES_SECONDS.

    One MGET however many they are. All of them whenever that cannot be
    told, for written_recently()'s reason.
    """
    scopes = set(scopes)
    if time.monotonic() < _markers_unknown_until:
        return scopes
    if not scopes:
        return set()
    markers = {_marker(scope): scope for scope in scopes}
    try:
        found = cache.get_many(list(markers))
    except REDIS_ERRORS as exc:
        _markers_lost(exc)
        return scopes
    return {markers[marker] for marker in found}


# --- The replica's health and lag ------------------------------------------


@dataclass(frozen=True)
class ReplicaStatus:
    """A probe's verdict on the replica.

    `state`: ok, lagging (lag at or past REPLICA_MAX_LAG_SECONDS), down (it
    did not answer, or a request just failed on it), not_standby, or
    unknown. `lag_seconds` bounds from above how old the newest data it
    shows may be. `checked_at` is time.monotonic() when the probe began.
    """

    state: str
    lag_seconds: float | None
    detail: str
    checked_at: float

    @property
    def usable(self) -> bool:
        return self.state == "ok"


def _unknown(detail: str) -> ReplicaStatus:
    return ReplicaStatus("unknown", None, detail, -math.inf)


def _first_line(exc: Exception) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


class _Monitor:
    """The process's verdict on the replica, and the one probe that renews it.

    The probe runs in a thread of its own, on that thread's connections:
    Django's, from the same pools as the requests' (none is kept open once
    the probe ends), so a down replica fails it as fast as it would fail a
    request, and its queries are no request's.
    """

    def __init__(self):
        self.lock = threading.Lock()
        self.status: ReplicaStatus | None = None
        self.running: threading.Event | None = None
        # When a probe last found the replica caught up (time.monotonic()):
        # it then held everything the primary had, so it is at most this old.
        self.caught_up_at: float | None = None
        self.probes = 0

    def start_probe(self) -> threading.Event:
        """Start a probe unless one runs; the event is set when it is done."""
        if self.running is None:
            self.running = threading.Event()
            threading.Thread(
                target=self._probe_and_publish,
                args=(self.running,),
                name="replica-probe",
                daemon=True,
            ).start()
        return self.running

    def _probe_and_publish(self, done: threading.Event) -> None:
        try:
            status = self.probe()
        except Exception as exc:  # never let the thread die without a verdict
            status = ReplicaStatus("down", None, _first_line(exc), time.monotonic())
        with self.lock:
            # A request that failed on the replica while this probe ran has
            # the newer word (replica_failed).
            if self.status is None or status.checked_at >= self.status.checked_at:
                self.status = status
            self.running = None
            self.probes += 1
        done.set()

    def probe(self) -> ReplicaStatus:
        started = time.monotonic()
        try:
            (primary_lsn,) = self._query(PRIMARY, read_sql(PRIMARY_POSITION_SQL))
        except Exception as exc:
            # Without the primary's position the replica cannot be judged;
            # the request's own reads go to the primary and meet its outage.
            return ReplicaStatus(
                "unknown", None, f"primary: {_first_line(exc)}", started
            )
        try:
            in_recovery, behind, commit_age = self._query(
                REPLICA,
                read_sql(REPLICA_POSITION_SQL),
                {"primary_lsn": primary_lsn},
            )
        except Exception as exc:
            return ReplicaStatus("down", None, _first_line(exc), started)
        if not in_recovery:
            return ReplicaStatus(
                "not_standby", None, "REPLICA_DATABASE_URL is not a standby", started
            )
        if behind <= 0:
            self.caught_up_at = started
            lag = 0.0
        else:
            # Both are upper bounds of how stale it is; the tighter one wins.
            bounds = [] if commit_age is None else [float(commit_age)]
            if self.caught_up_at is not None:
                bounds.append(time.monotonic() - self.caught_up_at)
            if not bounds:
                return ReplicaStatus(
                    "unknown", None, "behind, and never seen caught up", started
                )
            lag = max(0.0, min(bounds))
        if lag >= settings.REPLICA_MAX_LAG_SECONDS:
            return ReplicaStatus(
                "lagging", lag, f"{int(behind)} bytes of WAL not replayed", started
            )
        return ReplicaStatus("ok", lag, "", started)

    def _query(self, alias: str, sql: str, params=None) -> tuple:
        """One row from `alias`, on this thread's connection to it."""
        try:
            with connections[alias].cursor() as cursor:
                cursor.execute(sql, params)
                return cursor.fetchone()
        finally:
            # Back to its pool (closed, unpooled): the thread ends with the probe.
            connections[alias].close()


_monitor = _Monitor()


def wait_for_replay(timeout: float) -> None:
    """Block until the replica has replayed what the primary had written.

    For the harnesses that measure or assert right after a burst of writes
    (a seed, a test's commit): TimeoutError after `timeout` seconds. The
    app itself never waits; the router reads from the primary instead.
    """
    with connections[PRIMARY].cursor() as cursor:
        cursor.execute(read_sql(PRIMARY_POSITION_SQL))
        (primary_lsn,) = cursor.fetchone()
    deadline = time.monotonic() + timeout
    with connections[REPLICA].cursor() as cursor:
        while True:
            cursor.execute(read_sql(REPLICA_POSITION_SQL), {"primary_lsn": primary_lsn})
            in_recovery, behind, _ = cursor.fetchone()
            if not in_recovery:
                raise RuntimeError("the replica alias is no standby: nothing replays")
            if behind <= 0:
                return
            if time.monotonic() > deadline:
                raise TimeoutError(
                    f"the replica did not replay {primary_lsn} within {timeout}s"
                )
            time.sleep(0.02)


def replica_status(*, wait: bool = False) -> ReplicaStatus:
    """The replica's verdict, renewed in the background when it is stale.

    A verdict is fresh for REPLICA_CHECK_SECONDS; past that a probe starts,
    and requests go on with the old verdict until it answers, for at most as
    long again. Older (an idle process, a probe that hangs) is "unknown".
    Without `wait` this never blocks. With it, a stale verdict is renewed
    first, waiting up to PROBE_WAIT for the probe.
    """
    interval = settings.REPLICA_CHECK_SECONDS
    with _monitor.lock:
        status = _monitor.status
        age = time.monotonic() - status.checked_at if status else math.inf
        if age < interval:
            return status
        done = _monitor.start_probe()
    if wait:
        done.wait(PROBE_WAIT)
        with _monitor.lock:
            status = _monitor.status
            age = time.monotonic() - status.checked_at if status else math.inf
    if age < 2 * interval:
        return status
    return _unknown("no probe has answered lately")


def replica_failed(reason: str) -> None:
    """Take the replica out of use now: a request just failed on it.

    Reads go to the primary until the next probe, REPLICA_CHECK_SECONDS from
    now, finds the replica answering again.
    """
    with _monitor.lock:
        _monitor.status = ReplicaStatus("down", None, reason, time.monotonic())


def replica_forget() -> None:
    """Drop the verdict: the next read probes anew (tests, labs)."""
    with _monitor.lock:
        running = _monitor.running
    if running is not None:
        running.wait(PROBE_WAIT * 2)
    with _monitor.lock:
        _monitor.status = None
        _monitor.caught_up_at = None


def markers_forget() -> None:
    """Forget that markers were lost (tests): trust Redis's answers again now."""
    global _markers_unknown_until
    _markers_unknown_until = 0.0


# --- Staff reports on the readonly alias -----------------------------------


@contextmanager
def staff_report_transaction(
    *,
    user_id: int | None = None,
    statement_timeout: str | None = REPORT_STATEMENT_TIMEOUT,
    isolation: str | None = None,
) -> Iterator[str]:
    """Run a staff report in one transaction as staff, on the replica if it can.

    Every read inside goes to `readonly` (the standby, as shop_readonly,
    which may only SELECT) under a staff context, so that row-level security
    shows every customer's rows. With the replica down or lagging, inside
    `reads_from_primary()`, or with REPLICA_READS off, it runs on the
    primary instead. Yields the alias, for raw SQL:
    `connections[alias].cursor()`. `isolation` ("repeatable read") gives a
    report of several queries one snapshot; a standby cannot run
    "serializable".
    """
    usable = (
        settings.REPLICA_READS
        and not _primary_only.get()
        and replica_status(wait=True).usable
    )
    alias = READONLY if usable else PRIMARY
    reads = _request.get()
    if reads is not None and alias in STANDBYS:
        reads.standbys.add(alias)
    token = _report.set(alias)
    try:
        with staff_transaction(
            user_id=user_id,
            using=alias,
            lock_timeout=None,
            statement_timeout=statement_timeout,
            isolation=isolation,
        ):
            yield alias
    finally:
        _report.reset(token)
