"""Ways to reserve stock under concurrency, side by side (chapters 11 and 12).

Teaching code, not the shop's: checkout itself uses ordered row locks
(orders/locks.py), and nothing outside the labs, the tests and the docs
snapshots calls these. They are here so that each can run the same race
against every way:

    row_lock        SELECT ... FOR UPDATE, check, UPDATE      (pessimistic)
    conditional     one UPDATE ... WHERE on_hand - reserved >= n  (atomic)
    serializable    plain read + write under SERIALIZABLE, retried on 40001
    version         optimistic: UPDATE ... WHERE version = <read>, retried
    naive           read, compute in Python, write back: WRONG, loses updates

Each function reserves `quantity` units of one stock row in its own
transaction and returns True, or False when too few units are available.
`pause` (tests only) runs between the read and the write, to widen the
window in which the naive version goes wrong.
"""

from django.db import connection, transaction
from django.db.models import F

from catalog.models import StockLevel
from orders.models import Coupon, CouponRedemption
from shop.db_context import ISOLATION_LEVELS, staff_transaction
from shop.db_retry import backoff, retry_on_conflict

OPTIMISTIC_ATTEMPTS = 50


class ConflictsExhausted(RuntimeError):
    """An optimistic writer lost the race too many times in a row."""


def _isolation(level: str) -> None:
    # Must be the transaction's first statement; the level is a keyword, not
    # a value, so it comes from a fixed table, never from input.
    with connection.cursor() as cursor:
        cursor.execute(ISOLATION_LEVELS[level])


def reserve_row_lock(*, level_id: int, quantity: int, pause=None) -> bool:
    with transaction.atomic():
        level = StockLevel.objects.select_for_update().get(pk=level_id)
        if level.available < quantity:
            return False
        StockLevel.objects.filter(pk=level_id).update(reserved=F("reserved") + quantity)
        return True


def reserve_conditional(*, level_id: int, quantity: int, pause=None) -> bool:
    # Check and write in one statement: the row lock taken by UPDATE makes a
    # second writer re-evaluate the WHERE against the first one's result.
    updated = StockLevel.objects.filter(
        pk=level_id, quantity_on_hand__gte=F("reserved") + quantity
    ).update(reserved=F("reserved") + quantity)
    return updated == 1


def reserve_serializable(*, level_id: int, quantity: int, pause=None) -> bool:
    def attempt() -> bool:
        with transaction.atomic():
            _isolation("serializable")
            level = StockLevel.objects.get(pk=level_id)
            if level.available < quantity:
                return False
            # A read-modify-write, safe only because SERIALIZABLE aborts one
            # of two transactions that both read and then wrote this row.
            StockLevel.objects.filter(pk=level_id).update(
                reserved=level.reserved + quantity
            )
            return True

    return retry_on_conflict(attempt, attempts=30)


def reserve_version(*, level_id: int, quantity: int, pause=None) -> bool:
    for attempt in range(1, OPTIMISTIC_ATTEMPTS + 1):
        level = StockLevel.objects.get(pk=level_id)
        if level.available < quantity:
            return False
        updated = StockLevel.objects.filter(pk=level_id, version=level.version).update(
            reserved=level.reserved + quantity, version=F("version") + 1
        )
        if updated == 1:
            return True
        backoff(attempt, 0.005)  # someone wrote first: read again
    raise ConflictsExhausted(
        f"lost {OPTIMISTIC_ATTEMPTS} races for stock row {level_id}"
    )


def reserve_naive(*, level_id: int, quantity: int, pause=None) -> bool:
    """The bug this module exists to show: two readers, two writers, one update lost."""
    level = StockLevel.objects.get(pk=level_id)
    if level.available < quantity:
        return False
    if pause:
        pause()
    StockLevel.objects.filter(pk=level_id).update(reserved=level.reserved + quantity)
    return True


STRATEGIES = {
    "row_lock": reserve_row_lock,
    "conditional": reserve_conditional,
    "serializable": reserve_serializable,
    "version": reserve_version,
    "naive": reserve_naive,
}
CORRECT_STRATEGIES = ("row_lock", "conditional", "serializable", "version")


def coupon_redeem_by_count(
    *, coupon_id: int, order_id: int, customer_id: int, isolation: str, pause=None
) -> bool:
    """Enforce a usage limit by *counting* redemptions: a write-skew trap.

    Two transactions each count 0 uses of a 1-use coupon and each insert a
    redemption: different rows, so no lock conflicts, and both commit under
    READ COMMITTED and REPEATABLE READ. SERIALIZABLE sees the read/write
    dependency cycle and aborts one (40001); its retry counts 1 and stops.
    Checkout avoids the trap differently: one conditional UPDATE of
    orders_coupon.times_used, guarded by a CHECK. (orders_coupon has no
    row-level security: a coupon belongs to the shop, not to a customer.)
    """

    def attempt() -> bool:
        # As staff: the limit counts every customer's redemptions, and under
        # row-level security a customer's own transaction would count only
        # theirs (chapter 22: policies change what an aggregate means).
        with staff_transaction(isolation=isolation, lock_timeout=None):
            limit = Coupon.objects.values_list("usage_limit", flat=True).get(
                pk=coupon_id
            )
            used = CouponRedemption.objects.filter(coupon_id=coupon_id).count()
            if limit is not None and used >= limit:
                return False
            if pause:
                pause()
            CouponRedemption.objects.create(
                coupon_id=coupon_id, order_id=order_id, customer_id=customer_id
            )
            return True

    if isolation == "serializable":
        return retry_on_conflict(attempt, attempts=10)
    return attempt()
