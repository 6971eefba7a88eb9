"""Stock changes for an order's lines, in a constant number of statements.

Callers run inside a transaction and hold the order's row lock where there
is one. Each change carries the stock ledger's labels (the order, the
reason) in its own statement (stock_apply_v02.sql), so no label can be
missing or left over from another change.
"""

from django.db import connection

from orders import locks
from shop.sql_files import read_sql


def apply_deltas(
    deltas: dict[int, tuple[int, int]], *, order_id: int, reason: str
) -> None:
    """Add (on_hand, reserved) deltas to stock rows by id, in one UPDATE."""
    ids = sorted(deltas)
    params = {
        "ids": ids,
        "on_hand": [deltas[i][0] for i in ids],
        "reserved": [deltas[i][1] for i in ids],
        "order_id": order_id,
        "reason": reason,
    }
    with connection.cursor() as cursor:
        cursor.execute(read_sql("orders/sql/queries/stock_apply_v02.sql"), params)


def _apply(lines, *, on_hand_sign: int, reserved_sign: int, reason: str) -> None:
    if not lines:
        return
    # Lock the stock rows in the same fixed order as checkout, then let the
    # database do the arithmetic: no value read here is written back.
    levels = locks.stock_levels_lock(variant_ids=[line.variant_id for line in lines])
    level_id = {(lv.variant_id, lv.warehouse_id): lv.id for lv in levels}
    apply_deltas(
        {
            level_id[(line.variant_id, line.warehouse_id)]: (
                on_hand_sign * line.quantity,
                reserved_sign * line.quantity,
            )
            for line in lines
        },
        order_id=lines[0].order_id,
        reason=reason,
    )


def release_lines(lines) -> None:
    """Give the lines' reserved units back to the available stock."""
    _apply(lines, on_hand_sign=0, reserved_sign=-1, reason="release")


def restock_lines(lines) -> None:
    """Put sold units back on hand (a cancelled, paid order)."""
    _apply(lines, on_hand_sign=+1, reserved_sign=0, reason="cancel")
