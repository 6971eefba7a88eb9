"""A fake payment gateway with the shape of a real one.

Three calls, each keyed by the shop's reference for the order (a random one
per order, orders/models.py:new_payment_reference):

    charge(token=, amount=, reference=)   capture the amount, or decline it
    charge_status(reference=)             captured / declined / not_found
    refund(reference=, amount=)           give a captured charge back

Like a real gateway's idempotency keys, the reference makes every call safe
to repeat: a second charge with the same reference returns the first one's
answer and never captures twice, and a second refund returns the first
refund. A call that raises GatewayError (a timeout, the gateway down) left
its outcome *unknown*: the money may or may not have moved, and the caller
finds out with charge_status(), or by repeating a refund. It is never a
decline.

The card token chooses a test mode:

    tok_ok                      captured
    tok_declined (any other)    declined
    tok_timeout_after_capture   captured, then the call raises GatewayTimeout:
                                the shop never hears that the money moved
    tok_fail_before_capture     raises GatewayUnavailable before anything
                                happens: nothing is captured
    tok_refund_timeout          captured; its first refund goes through, then
                                raises GatewayTimeout

A timeout is raised only by the call that did the work: repeating it with the
same reference answers normally, as a real gateway's idempotent replay does.

The gateway's memory is the table orders_fake_gateway_ledger, created by
orders/sql/fake_gateway/ledger_v01.sql. It stands for the gateway's own
database: the shop's code never reads it except through these functions. It
lives in the shop's PostgreSQL so that every process that can call the
gateway (web workers, the Celery worker, `manage.py checkout_recover`) sees
the same one. Its bookkeeping runs on a connection of its own, in
autocommit, so that it is never part of the caller's transaction, exactly as
a call to a remote gateway would not be.

That connection is kept between calls, one per thread, the way a real
gateway's client keeps its HTTPS connections alive in a pool: opening one
(TCP, TLS, the password exchange) costs about 7 ms here, and a client that
opened one per call would pay that on every charge, where a real one pays
a network round trip to the gateway. A kept connection that sits idle for
KEEPALIVE_EXPIRY is closed, as a pool expires its idle connections, so that
nobody's database is held open by a gateway no one calls (DROP DATABASE
waits five seconds for other sessions, then refuses); one that the server
hung up on is noticed before it is used, and replaced.

Every call (charge, charge_status, refund) first refuses to run inside a
transaction, and hands the caller's pooled connection back to the pool for
its duration (_leave_the_database): a slow gateway holds neither locks nor
connections of the shop's.

`PAYMENT_GATEWAY_DELAY` (seconds) makes every call slow, so tests can show
that no row lock is held while the shop waits for the gateway.
`PAYMENT_GATEWAY_HOOK` (tests only) is called with a GatewayCall at the
start of every call (charge, charge_status, refund), before the gateway
does anything: tests count the shop's calls with it, and hold a call inside
the gateway while something else happens.
"""

import os
import select
import threading
import time
import uuid
import weakref
from contextlib import contextmanager
from dataclasses import dataclass
from decimal import Decimal
from enum import StrEnum

import psycopg
from django.conf import settings
from django.db import connections

from shop.sql_files import read_sql

SQL = "orders/sql/fake_gateway"
CAPTURE, DECLINE = "capture", "decline"
TIMEOUT_AFTER_CAPTURE = "timeout_after_capture"
FAIL_BEFORE_CAPTURE = "fail_before_capture"
REFUND_TIMEOUT = "refund_timeout"
MODES = {
    "tok_ok": CAPTURE,
    "tok_declined": DECLINE,
    "tok_timeout_after_capture": TIMEOUT_AFTER_CAPTURE,
    "tok_fail_before_capture": FAIL_BEFORE_CAPTURE,
    "tok_refund_timeout": REFUND_TIMEOUT,
}
# Django's own connection parameters, which a plain psycopg connection
# does without. prepare_threshold is kept: the alias's setting (None, never
# prepare) is what lets a connection go through pgbouncer in transaction
# mode, where a statement prepared on one server connection is missing, or
# already there, on the next (shop/settings/base.py).
DJANGO_ONLY_PARAMS = ("cursor_factory", "context")
# Seconds a kept connection may sit idle before it is closed: a few calls'
# worth under load, and well inside the five seconds DROP DATABASE waits.
KEEPALIVE_EXPIRY = 1.0


class PaymentCalledInTransaction(RuntimeError):
    """A gateway call inside a transaction would hold its locks while it waits."""


class GatewayError(Exception):
    """The gateway did not answer: the outcome is unknown, not a refusal."""


class GatewayTimeout(GatewayError):
    """The call took too long; the gateway may have done the work."""


class GatewayUnavailable(GatewayError):
    """The gateway could not be reached."""


# What a call that got no answer raises: the gateway's own timeout or
# outage (GatewayError), the fake gateway's store failing mid-call
# (psycopg.Error, what a real gateway's server failing looks like from
# here), or the connection to it cut (OSError: ConnectionError,
# TimeoutError). The work may or may not have been done: callers treat
# them alike, as an unknown outcome, and find out later.
NO_ANSWER = (GatewayError, psycopg.Error, OSError)


class GatewayRefused(Exception):
    """The gateway answered no to a request that cannot be done.

    A refund of a reference with nothing captured, a refund larger than the
    capture, or a reference charged again with another amount: a bug in the
    caller, not an outage, so retrying it changes nothing.
    """


class ChargeStatus(StrEnum):
    CAPTURED = "captured"
    DECLINED = "declined"
    NOT_FOUND = "not_found"


@dataclass(frozen=True)
class ChargeResult:
    approved: bool
    reference: str  # the gateway's id of this capture or decline


@dataclass(frozen=True)
class ChargeLookup:
    status: ChargeStatus
    reference: str = ""  # the gateway's id, when there is a charge
    amount: Decimal | None = None


@dataclass(frozen=True)
class RefundResult:
    reference: str  # the gateway's id of the refund
    amount: Decimal


@dataclass(frozen=True)
class GatewayCall:
    """One call the shop made, as PAYMENT_GATEWAY_HOOK sees it."""

    name: str  # "charge", "charge_status" or "refund"
    reference: str
    token: str | None = None  # the card token, for a charge


@dataclass(frozen=True)
class HistoryEntry:
    """A charge or refund made before the gateway kept its ledger (the seed)."""

    kind: str  # "charge" or "refund"
    reference: str
    outcome: str  # "captured" or "declined" for a charge, "refunded"
    amount: Decimal
    gateway_reference: str


@dataclass(frozen=True)
class _Entry:
    outcome: str
    amount: Decimal
    gateway_reference: str
    mode: str


def charge(*, token: str, amount: Decimal, reference: str) -> ChargeResult:
    """Charge `amount` to the card behind `token`, once per `reference`."""
    _enter(GatewayCall("charge", reference, token))
    mode = MODES.get(token, DECLINE)
    if mode == FAIL_BEFORE_CAPTURE:
        raise GatewayUnavailable(
            f"the gateway could not be reached for {reference!r} (test mode "
            f"{token}); nothing was captured"
        )
    entry, created = _record(
        kind="charge",
        reference=reference,
        outcome="declined" if mode == DECLINE else "captured",
        amount=amount,
        mode=mode,
    )
    if entry.amount != amount:
        raise GatewayRefused(
            f"{reference!r} was already charged {entry.amount}, not {amount}: "
            "a new charge needs a new reference"
        )
    if created and mode == TIMEOUT_AFTER_CAPTURE:
        raise GatewayTimeout(
            f"the charge of {reference!r} timed out after it was captured "
            f"(test mode {token}); ask charge_status() what happened"
        )
    return ChargeResult(
        approved=entry.outcome == "captured", reference=entry.gateway_reference
    )


def charge_status(*, reference: str) -> ChargeLookup:
    """What happened to the charge made with `reference`, if any."""
    _enter(GatewayCall("charge_status", reference))
    entry = _get(kind="charge", reference=reference)
    if entry is None:
        return ChargeLookup(status=ChargeStatus.NOT_FOUND)
    return ChargeLookup(
        status=ChargeStatus(entry.outcome),
        reference=entry.gateway_reference,
        amount=entry.amount,
    )


def refund(*, reference: str, amount: Decimal) -> RefundResult:
    """Give back `amount` of the charge made with `reference`, once per reference."""
    _enter(GatewayCall("refund", reference))
    charged = _get(kind="charge", reference=reference)
    if charged is None or charged.outcome != "captured":
        raise GatewayRefused(f"nothing was captured under {reference!r} to refund")
    if amount > charged.amount:
        raise GatewayRefused(
            f"a refund of {amount} exceeds the {charged.amount} captured "
            f"under {reference!r}"
        )
    entry, created = _record(
        kind="refund",
        reference=reference,
        outcome="refunded",
        amount=amount,
        mode=charged.mode,
    )
    if created and charged.mode == REFUND_TIMEOUT:
        raise GatewayTimeout(
            f"the refund of {reference!r} timed out after it was made (test "
            "mode tok_refund_timeout); repeat it to learn its id"
        )
    return RefundResult(reference=entry.gateway_reference, amount=entry.amount)


def history_record(entries) -> int:
    """File charges and refunds the gateway made before it kept a ledger.

    For the seed's order history, which stands for money taken long ago: a
    real gateway would know it, and refunds of it would be refused without
    it. One transaction on the gateway's own connection (never the
    caller's), all or nothing; an entry the gateway already holds for the
    same kind and reference is kept as it is (the same seed again). Returns
    how many entries were new. `seed --reset` forgets this history first
    (history_forget).
    """
    with _ledger() as cursor, cursor.connection.transaction():
        cursor.execute(read_sql(f"{SQL}/history_table_v01.sql"))
        with cursor.copy(read_sql(f"{SQL}/history_copy_v01.sql")) as copy:
            for entry in entries:
                copy.write_row(
                    (
                        entry.kind,
                        entry.reference,
                        entry.outcome,
                        entry.amount,
                        entry.gateway_reference,
                    )
                )
        cursor.execute(read_sql(f"{SQL}/history_record_v01.sql"))
        return cursor.rowcount


def history_forget() -> int:
    """Forget the history the gateway was given, and the refunds made of it.

    For `seed --reset` (orders/seeding/), once it has emptied the orders
    that history describes. Returns how many entries were forgotten.
    """
    with _ledger() as cursor:
        cursor.execute(read_sql(f"{SQL}/history_forget_v01.sql"))
        return cursor.rowcount


def _enter(call: GatewayCall) -> None:
    _leave_the_database(call.name)
    _wait()
    hook = getattr(settings, "PAYMENT_GATEWAY_HOOK", None)
    if hook is not None:
        hook(call)  # tests: count calls, hold one inside the gateway


def _leave_the_database(call: str) -> None:
    """Refuse a call inside a transaction; hand pooled connections back.

    Every gateway call may take seconds. A transaction open through it
    would hold its locks all that time. A pooled connection held through
    it holds no lock, but is one fewer for everyone else: ten slow charges,
    or ten cancels waiting for their refunds, would empty a pool of ten,
    and every other request, catalogue reads included, would wait for a
    connection and answer 503. So the caller's pooled connections go back
    to the pool, and its next query borrows a (checked) one again. An
    unpooled alias keeps its connection: closing it frees nothing that
    another request could take, and reopening it costs a new session.
    """
    in_use = connections.all(initialized_only=True)
    for connection in in_use:
        if connection.in_atomic_block:
            raise PaymentCalledInTransaction(
                f"{call}() called inside a transaction on {connection.alias!r}: "
                "finish the transaction first (checkout phase 2 runs outside one)."
            )
    for connection in in_use:
        if connection.settings_dict["OPTIONS"].get("pool"):
            connection.close()


def _wait() -> None:
    delay = float(getattr(settings, "PAYMENT_GATEWAY_DELAY", 0) or 0)
    if delay:
        time.sleep(delay)


def _record(*, kind, reference, outcome, amount, mode) -> tuple[_Entry, bool]:
    """Write an entry unless one exists; return the entry on file and whether new."""
    prefix = "ch" if kind == "charge" else "re"
    params = {
        "kind": kind,
        "reference": reference,
        "outcome": outcome,
        "amount": amount,
        "gateway_reference": f"fake_{prefix}_{uuid.uuid4().hex[:16]}",
        "mode": mode,
    }
    with _ledger() as cursor:
        cursor.execute(read_sql(f"{SQL}/entry_record_v01.sql"), params)
        row = cursor.fetchone()
        if row is not None:
            return _Entry(*row), True
        cursor.execute(read_sql(f"{SQL}/entry_get_v01.sql"), params)
        return _Entry(*cursor.fetchone()), False


def _get(*, kind: str, reference: str) -> _Entry | None:
    with _ledger() as cursor:
        cursor.execute(
            read_sql(f"{SQL}/entry_get_v01.sql"), {"kind": kind, "reference": reference}
        )
        row = cursor.fetchone()
    return _Entry(*row) if row else None


@contextmanager
def _ledger():
    """A cursor on the gateway's own connection, in autocommit.

    The calling thread's kept connection (_Kept), from the parameters of the
    `default` alias: nothing the caller's connection does (a transaction, a
    pool checkout) can include the gateway's writes.
    """
    kept = _Kept.of_this_thread()
    with kept.lock:
        try:
            connection = kept.connect()
            with connection.cursor() as cursor:
                yield cursor
        except psycopg.OperationalError as exc:
            # Lost before or after the work: either way the caller cannot
            # know. The connection is not kept: the next call opens another.
            kept.close()
            raise GatewayUnavailable(f"the gateway is not answering: {exc}") from exc
        finally:
            kept.used_at = time.monotonic()


class _Kept:
    """One thread's gateway connection, kept between calls, closed when idle.

    Closed by the sweeper thread once idle for KEEPALIVE_EXPIRY, and when
    its thread ends. Never used nor closed by another process: a worker
    forked after a call inherits the object but not the right to its socket
    (psycopg, too, leaves a connection made by another process alone).
    """

    _local = threading.local()
    _all = weakref.WeakSet()
    _sweeper_pid = None
    _registry_lock = threading.Lock()

    def __init__(self):
        self.lock = threading.RLock()
        self.connection = None
        self.params = None
        self.used_at = time.monotonic()
        self.pid = os.getpid()

    @classmethod
    def of_this_thread(cls) -> "_Kept":
        kept = getattr(cls._local, "kept", None)
        if kept is None or kept.pid != os.getpid():
            kept = cls._local.kept = cls()
            with cls._registry_lock:
                cls._all.add(kept)
                if cls._sweeper_pid != kept.pid:
                    cls._sweeper_pid = kept.pid
                    threading.Thread(
                        target=cls._sweep, name="payments-keepalive", daemon=True
                    ).start()
        return kept

    def connect(self) -> psycopg.Connection:
        """The kept connection if it still works, else a new one."""
        params = connections["default"].get_connection_params()
        for name in DJANGO_ONLY_PARAMS:
            params.pop(name, None)
        if self.connection is not None and (
            params != self.params or not self._idle_and_alive()
        ):
            self.close()
        if self.connection is None:
            self.connection = psycopg.connect(**params, autocommit=True)
            self.params = params
        return self.connection

    def _idle_and_alive(self) -> bool:
        """Whether the connection can take a call, without a round trip.

        An idle connection's socket has nothing to read unless the server
        spoke first: a FATAL before it hung up (a restart, a terminated
        backend), or the end of the stream. The check a client's pool makes
        before it reuses a keep-alive connection.
        """
        connection = self.connection
        if connection.closed or connection.info.transaction_status != (
            psycopg.pq.TransactionStatus.IDLE
        ):
            return False
        readable, _, _ = select.select([connection.fileno()], [], [], 0)
        return not readable

    def close(self) -> None:
        connection, self.connection = self.connection, None
        if connection is not None and self.pid == os.getpid():
            connection.close()

    def __del__(self):
        self.close()  # its thread ended

    @classmethod
    def _forget_the_parents(cls) -> None:
        """In a forked child: start afresh; the parent's locks may be held."""
        cls._local = threading.local()
        cls._all = weakref.WeakSet()
        cls._registry_lock = threading.Lock()
        cls._sweeper_pid = None

    @classmethod
    def _sweep(cls) -> None:
        """Close the connections idle for KEEPALIVE_EXPIRY, for ever."""
        while True:
            time.sleep(KEEPALIVE_EXPIRY / 2)
            with cls._registry_lock:
                every = list(cls._all)
            for kept in every:
                # A connection in use is skipped: its call is short.
                if kept.lock.acquire(blocking=False):
                    try:
                        idle = time.monotonic() - kept.used_at
                        if idle >= KEEPALIVE_EXPIRY:
                            kept.close()
                    finally:
                        kept.lock.release()
            del every


os.register_at_fork(after_in_child=_Kept._forget_the_parents)
