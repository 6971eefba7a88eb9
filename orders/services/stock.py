"""Stock movements of an order's lines. Callers hold the order's row lock and
have set app.stock_reason / app.order_id for the ledger trigger."""

from django.db.models import F

from catalog.models import StockLevel
from orders import locks


def _apply(lines, *, on_hand_sign: int, reserved_sign: int) -> None:
    # Lock the stock rows in the same fixed order as checkout, then change
    # them with F() expressions: the database does the arithmetic.
    locks.stock_levels_lock(variant_ids=[line.variant_id for line in lines])
    for line in lines:
        StockLevel.objects.filter(
            variant_id=line.variant_id, warehouse_id=line.warehouse_id
        ).update(
            quantity_on_hand=F("quantity_on_hand") + on_hand_sign * line.quantity,
            reserved=F("reserved") + reserved_sign * line.quantity,
        )


def sell_lines(lines) -> None:
    """Turn the lines' reservations into sales: fewer on hand, fewer reserved."""
    _apply(lines, on_hand_sign=-1, reserved_sign=-1)


def release_lines(lines) -> None:
    """Give the lines' reserved units back to the available stock."""
    _apply(lines, on_hand_sign=0, reserved_sign=-1)


def restock_lines(lines) -> None:
    """Put sold units back on hand (a cancelled, paid order)."""
    _apply(lines, on_hand_sign=+1, reserved_sign=0)
