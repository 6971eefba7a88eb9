"""Order life after checkout: cancel, and recovery of interrupted checkouts."""

import logging
from dataclasses import dataclass, field
from datetime import timedelta

from django.conf import settings
from django.db import OperationalError, connection
from django.db.models import Exists, OuterRef, Q
from django.utils import timezone

from orders import locks, payments
from orders.models import REFUND_STATUSES, IdempotencyKey, Order, Payment
from orders.services.refunds import payment_refund, refund_owe
from orders.services.settle import (
    ChargeOutcome,
    order_release,
    order_settle,
    payment_record,
)
from orders.services.stock import restock_lines
from shop.db_context import customer_transaction, job_transaction
from shop.db_retry import BUSY_SQLSTATES, retry_on_conflict, sqlstate
from shop.errors import Conflict, NotFound
from shop.outbox import outbox_kick
from shop.sql_files import read_sql

log = logging.getLogger(__name__)

# Far longer than any gateway call: a checkout this old is not coming back,
# and a gateway that has no charge for it now will not make one.
STALE_CHECKOUT_AFTER = timedelta(minutes=15)
# A checkout whose gateway answer is on file (or known to be lost) and whose
# phase 3 has not run for this long lost its request: a crash, a timeout,
# or every retry of a busy stock row failed. Recovery takes over.
CAPTURED_UNSETTLED_AFTER = timedelta(minutes=1)
# For this long after a release, recovery still asks the gateway about a
# charge whose outcome was in doubt: a capture that arrived after the order
# was released (a charge still in flight when recovery asked) is found and
# refunded. A real shop also reconciles with the gateway's daily report.
RECONCILE_RELEASED_FOR = timedelta(days=1)
# How far back recovery looks for failed orders that hold a captured charge
# and no refund: a state no correct path leaves behind (whoever records a
# capture on a failed order owes its refund in the same transaction), so
# finding one means a bug, like a release that read its batch only once
# (release_stale_reservations_v04.sql says why it reads it twice).
STRANDED_CAPTURES_FOR = timedelta(days=7)
# Orders the release procedure takes per transaction. Each is released in
# a subtransaction of its own, and a backend caches 64 of them: past that,
# every other session's snapshot checks get slower until the batch commits.
RELEASE_BATCH = 50
# Recovery acts as a background job, not as staff: row-level security lets
# a job see orders, payments, keys and carts, and nothing else (chapter 22).
RECOVERY_JOB = "checkout_recover"

# Bounds on the calls one run makes to the gateway, overridable in settings:
# at most this many lookups (or refunds) per step, and for each order a
# wait before it is asked again that starts at BACKOFF and doubles per ask
# up to BACKOFF_MAX. With the defaults an answer in doubt for a day costs
# about a dozen lookups, not one per five-minute run.
DEFAULT_ASK_BATCH = 100
DEFAULT_ASK_BACKOFF = timedelta(minutes=1)
DEFAULT_ASK_BACKOFF_MAX = timedelta(hours=6)


def order_cancel(*, customer_id: int, order_id: int) -> Order:
    """Cancel a paid order, put its units back on hand and refund the charge.

    The cancel and the promise of a refund (a refund_pending payment row)
    commit together; the gateway's refund follows outside any transaction,
    and recovery retries it if the gateway does not answer. A retried cancel
    finds the order cancelled and refunds nothing a second time.
    """

    def cancel() -> Order:
        with customer_transaction(customer_id):
            outbox_kick()  # cancelled (and refunded): shipped after COMMIT
            order = locks.order_lock(order_id=order_id)
            if order is None or order.customer_id != customer_id:
                raise NotFound("This order does not exist.")
            if order.status != Order.Status.PAID:
                raise Conflict(
                    f"A {order.status} order cannot be cancelled; "
                    "only paid orders can.",
                    code="not_cancellable",
                )
            restock_lines(list(order.lines.order_by("variant_id")))
            refund_owe(order_id=order.pk, amount=order.total)
            now = timezone.now()
            Order.objects.filter(pk=order.pk).update(
                status=Order.Status.CANCELLED, cancelled_at=now
            )
            order.status, order.cancelled_at = Order.Status.CANCELLED, now
            return order

    order = retry_on_conflict(cancel)
    payment_refund(order_id=order.pk, customer_id=customer_id)
    return order


@dataclass
class RecoveryReport:
    """What one run of checkout_recover did, and what it could not do."""

    asked: int = 0  # gateway lookups made
    finished: int = 0  # pending orders sold, their charge captured
    released: int = 0  # pending orders failed, their stock given back
    refunded: int = 0  # refunds the gateway made and the shop recorded
    failures: list[str] = field(default_factory=list)

    @property
    def settled(self) -> int:
        """Interrupted checkouts finished or released."""
        return self.finished + self.released


def checkout_recover(
    *,
    older_than: timedelta = STALE_CHECKOUT_AFTER,
    captured_after: timedelta = CAPTURED_UNSETTLED_AFTER,
    batch_size=RELEASE_BATCH,
) -> RecoveryReport:
    """Finish or release checkouts interrupted between phases; report what happened.

    In this order, each step in short transactions of its own and every
    gateway call outside any transaction:

    1. ask the gateway, by the order's reference, about pending orders
       whose charge has no answer on file or an unknown one, and write the
       answer down (a "not found" only once the checkout is stale);
    2. finish the orders whose charge was captured (sold, paid, the key
       given its 201), since the customer has paid;
    3. release the stale orders whose charge is on file as not captured,
       with the PL/pgSQL procedure orders_release_stale_reservations; it
       commits after each batch, and a procedure that COMMITs must be
       CALLed outside a transaction block, hence autocommit here; an order
       it cannot release, it skips with a warning, which the report lists;
    4. free the keys of released checkouts, so a retry starts afresh;
    5. ask again about recently released orders whose charge was in doubt,
       and owe a refund for any capture found;
    6. owe and make the refund of any failed order holding a captured
       charge and no refund, whatever left it so;
    7. make the refunds still owed.

    One order that fails (a lock held too long, a bug) is logged and
    skipped, and one step that fails does not stop the next: the report
    lists every failure, and the next run tries again.
    """
    if connection.in_atomic_block:
        raise RuntimeError(
            "checkout_recover commits per batch: call it outside atomic()."
        )
    report = RecoveryReport()
    steps = [
        ("ask the gateway", _ask_about_pending, (older_than, captured_after)),
        ("finish captured checkouts", _finish_captured, (captured_after,)),
        ("release stale checkouts", _release_stale, (older_than, batch_size)),
        ("free released keys", _free_keys, (older_than,)),
        ("ask about released checkouts", _reconcile_released, ()),
        ("refund stranded captures", _refund_stranded_captures, ()),
        ("make owed refunds", _refund_owed, (captured_after,)),
    ]
    for name, step, args in steps:
        try:
            step(report, *args)
        except Exception as exc:
            _failed(report, name, exc)
    # Outside any transaction now: the kick goes at once, for what the
    # steps committed (releases, sales, refunds).
    outbox_kick()
    return report


def _failed(report: RecoveryReport, what: str, exc: Exception) -> None:
    log.exception("checkout_recover: %s failed; the next run tries again", what)
    report.failures.append(f"{what}: {type(exc).__name__}: {exc}")
    # A connection the error left unusable is replaced, so that it does not
    # fail every later order and step too.
    connection.close_if_unusable_or_obsolete()


def _each(report: RecoveryReport, what: str, items, handle) -> None:
    """Call handle(item) for each item; one that fails is reported and skipped."""
    for item in items:
        try:
            handle(item)
        except Exception as exc:
            key = item[0] if isinstance(item, tuple) else item
            _failed(report, f"{what}, order {key}", exc)


def _setting(name: str, default):
    return getattr(settings, name, default)


def _ask_bounds() -> dict:
    """The settings that bound the gateway calls, waits as timedeltas."""
    return {
        "batch_size": int(_setting("CHECKOUT_RECOVER_ASK_BATCH", DEFAULT_ASK_BATCH)),
        "backoff": _duration(
            _setting("CHECKOUT_RECOVER_ASK_BACKOFF", DEFAULT_ASK_BACKOFF)
        ),
        "backoff_max": _duration(
            _setting("CHECKOUT_RECOVER_ASK_BACKOFF_MAX", DEFAULT_ASK_BACKOFF_MAX)
        ),
    }


def _duration(value) -> timedelta:
    """A wait from settings: a timedelta, or seconds (as the environment gives)."""
    if isinstance(value, timedelta):
        return value
    return timedelta(seconds=float(value))


def _claim_asks(*, order_status, charge_statuses, placed_after, placed_before):
    """Claim the charges due to be asked about (payment_ask_claim_v01.sql)."""
    params = {
        **_ask_bounds(),
        "order_status": order_status,
        "charge_statuses": list(charge_statuses),
        "placed_after": placed_after,
        "placed_before": placed_before,
    }
    with connection.cursor() as cursor:
        cursor.execute(read_sql("orders/sql/queries/payment_ask_claim_v01.sql"), params)
        return cursor.fetchall()


def _ask_about_pending(report, older_than: timedelta, asked_after: timedelta):
    now = timezone.now()
    stale = now - older_than

    def claim():
        with job_transaction(RECOVERY_JOB), connection.cursor() as cursor:
            cursor.execute(
                read_sql("orders/sql/queries/payment_ask_note_v01.sql"),
                {
                    "placed_before": now - asked_after,
                    "batch_size": _ask_bounds()["batch_size"],
                },
            )
            return _claim_asks(
                order_status=Order.Status.PENDING,
                charge_statuses=[Payment.Status.UNKNOWN],
                placed_after=None,
                placed_before=now - asked_after,
            )

    claimed = retry_on_conflict(claim)
    report.asked += len(claimed)

    def ask(row):
        order_id, total, created_at, reference = row
        outcome = _lookup(order_id, reference)
        if outcome is None:
            return
        if outcome.status == Payment.Status.NOT_CAPTURED and created_at >= stale:
            # Not yet: the checkout's own call may still be on its way to
            # the gateway. Only a stale checkout's "not found" is final.
            return
        _record(order_id, total, outcome)

    _each(report, "ask the gateway", claimed, ask)


def _lookup(order_id: int, reference: str) -> ChargeOutcome | None:
    """The gateway's answer for the order's charge, or None if it gave none."""
    try:
        found = payments.charge_status(reference=reference)
    except payments.NO_ANSWER:
        log.warning(
            "the gateway did not answer about order %s; asked again later", order_id
        )
        return None
    status = {
        payments.ChargeStatus.CAPTURED: Payment.Status.CAPTURED,
        payments.ChargeStatus.DECLINED: Payment.Status.DECLINED,
        payments.ChargeStatus.NOT_FOUND: Payment.Status.NOT_CAPTURED,
    }[found.status]
    return ChargeOutcome(status, found.reference, found.amount)


def _record(order_id: int, total, outcome: ChargeOutcome) -> bool:
    """Write the gateway's answer down; False if the order stayed busy."""

    def record():
        with job_transaction(RECOVERY_JOB, lock_timeout="5s"):
            payment_record(order_id=order_id, amount=total, outcome=outcome)

    try:
        retry_on_conflict(record, retry_on=BUSY_SQLSTATES, attempts=3)
    except OperationalError as exc:
        if sqlstate(exc) not in BUSY_SQLSTATES:
            raise
        # A live request holds the order: it writes its own answer, and
        # the next run asks again if it does not.
        log.warning("order %s stayed locked; recovery asks again next run", order_id)
        return False
    return True


def _finish_captured(report, older_than: timedelta) -> None:
    cutoff = timezone.now() - older_than
    with job_transaction(RECOVERY_JOB):
        order_ids = list(
            Order.objects.filter(
                status=Order.Status.PENDING,
                created_at__lt=cutoff,
                payments__status=Payment.Status.CAPTURED,
            )
            .values_list("id", flat=True)
            .distinct()
        )

    def finish(order_id):
        done = retry_on_conflict(
            lambda: _finish_one(order_id), retry_on=BUSY_SQLSTATES, attempts=3
        )
        if done == "finished":
            report.finished += 1
        elif done == "released":
            report.released += 1
            if payment_refund(order_id=order_id, job=RECOVERY_JOB):
                report.refunded += 1

    _each(report, "finish captured checkouts", order_ids, finish)


def _finish_one(order_id: int) -> str | None:
    with job_transaction(RECOVERY_JOB, lock_timeout="5s"):
        # SKIP LOCKED: a live phase 3 holding the order finishes it itself.
        order = locks.order_lock(order_id=order_id, skip_locked=True)
        if order is None or order.status != Order.Status.PENDING:
            return None
        captured = (
            Payment.objects.filter(order=order, status=Payment.Status.CAPTURED)
            .values_list("amount", flat=True)
            .first()
        )
        if captured is None:
            return None
        if captured != order.total:
            # The gateway took another amount than the order costs (a
            # reference reused, a bug): selling the order for it would keep
            # money that is not the price. The order is released and what
            # was taken is given back.
            log.error(
                "order %s: the gateway captured %s for a total of %s; released "
                "and refunded",
                order_id,
                captured,
                order.total,
            )
            order_release(order)
            refund_owe(order_id=order_id, amount=captured)
            return "released"
        # Sold, and the 201 stored with the order's key if it is still in
        # progress (never answered, or answered `payment_pending` for now).
        order_settle(order, approved=True)
    return "finished"


def _release_stale(report, older_than: timedelta, batch_size: int) -> None:
    skipped = []

    def note(diagnostic):
        # The procedure skips an order it cannot release with a WARNING
        # (release_stale_reservations_v04.sql); the report carries it.
        if diagnostic.severity_nonlocalized == "WARNING":
            skipped.append(diagnostic.message_primary)

    with connection.cursor() as cursor:
        cursor.connection.add_notice_handler(note)
        try:
            cursor.execute(
                read_sql("orders/sql/queries/release_stale_call_v01.sql"),
                [older_than, batch_size],
            )
            (released,) = cursor.fetchone()
        finally:
            cursor.connection.remove_notice_handler(note)
    report.released += released
    for message in skipped:
        log.error("checkout_recover: %s; the next run tries again", message)
        report.failures.append(f"release stale checkouts: {message}")


def _free_keys(report, older_than: timedelta) -> None:
    # Forget the keys of released (or never-placed) checkouts so that the
    # client's retry with the same key starts a fresh checkout.
    cutoff = timezone.now() - older_than
    with job_transaction(RECOVERY_JOB):
        IdempotencyKey.objects.filter(
            status=IdempotencyKey.Status.IN_PROGRESS, created_at__lt=cutoff
        ).filter(Q(order__isnull=True) | Q(order__status=Order.Status.FAILED)).delete()


def _reconcile_released(report) -> None:
    """Find captures that reached the gateway after their order was released."""
    now = timezone.now()

    def claim():
        with job_transaction(RECOVERY_JOB):
            return _claim_asks(
                order_status=Order.Status.FAILED,
                charge_statuses=[Payment.Status.UNKNOWN, Payment.Status.NOT_CAPTURED],
                placed_after=now - RECONCILE_RELEASED_FOR,
                placed_before=now,
            )

    claimed = retry_on_conflict(claim)
    report.asked += len(claimed)

    def ask(row):
        order_id, total, _, reference = row
        outcome = _lookup(order_id, reference)
        captured = outcome is not None and outcome.status == Payment.Status.CAPTURED
        # payment_record owes the refund, since the order is failed.
        if (
            captured
            and _record(order_id, total, outcome)
            and payment_refund(order_id=order_id, job=RECOVERY_JOB)
        ):
            report.refunded += 1

    _each(report, "ask about released checkouts", claimed, ask)


def _refund_stranded_captures(report) -> None:
    """Owe and make the refund of failed orders that hold a captured charge."""
    since = timezone.now() - STRANDED_CAPTURES_FOR
    refund_rows = Payment.objects.filter(
        order=OuterRef("pk"), status__in=REFUND_STATUSES
    )
    with job_transaction(RECOVERY_JOB):
        order_ids = list(
            Order.objects.filter(
                status=Order.Status.FAILED,
                created_at__gte=since,
                payments__status=Payment.Status.CAPTURED,
            )
            .exclude(Exists(refund_rows))
            .order_by("id")
            .values_list("id", flat=True)[: _ask_bounds()["batch_size"]]
        )

    def refund(order_id):
        owed = retry_on_conflict(lambda: _owe_stranded(order_id))
        if owed and payment_refund(order_id=order_id, job=RECOVERY_JOB):
            report.refunded += 1

    _each(report, "refund stranded captures", order_ids, refund)


def _owe_stranded(order_id: int) -> bool:
    with job_transaction(RECOVERY_JOB, lock_timeout="5s"):
        # Under the order's lock, which whoever records a charge takes
        # first: the state read here cannot change until COMMIT.
        order = locks.order_lock(order_id=order_id)
        if order is None or order.status != Order.Status.FAILED:
            return False
        payments_on_file = dict(
            Payment.objects.filter(order=order).values_list("status", "amount")
        )
        captured = payments_on_file.get(Payment.Status.CAPTURED)
        if captured is None or set(payments_on_file) & set(REFUND_STATUSES):
            return False
        log.error(
            "order %s failed holding a captured charge of %s and no refund; "
            "refunding it",
            order_id,
            captured,
        )
        refund_owe(order_id=order_id, amount=captured)
    return True


def _refund_owed(report, older_than: timedelta) -> None:
    bounds = _ask_bounds()

    def claim():
        with job_transaction(RECOVERY_JOB), connection.cursor() as cursor:
            # Younger refunds are still being made by the request that owed them.
            cursor.execute(
                read_sql("orders/sql/queries/payment_refund_claim_v01.sql"),
                {**bounds, "owed_before": timezone.now() - older_than},
            )
            return [order_id for (order_id,) in cursor.fetchall()]

    def refund(order_id):
        if payment_refund(order_id=order_id, job=RECOVERY_JOB):
            report.refunded += 1

    _each(report, "make owed refunds", retry_on_conflict(claim), refund)
