"""The only place rows are locked, always in one global order:

    cart -> order -> stock levels (by variant id, then warehouse id)

Two transactions that take locks in the same order can wait for each other
but never in a cycle, so they cannot deadlock (chapter 12).
"""

from catalog.models import StockLevel
from orders.models import Cart, Order


def cart_lock(*, customer_id: int) -> Cart | None:
    """Lock the customer's cart (None if none): one phase 1 per cart at a time."""
    return Cart.objects.select_for_update().filter(customer_id=customer_id).first()


def order_lock(*, order_id: int, skip_locked: bool = False) -> Order | None:
    """Lock one order; with skip_locked, None if someone else holds it."""
    orders = Order.objects.select_for_update(of=("self",), skip_locked=skip_locked)
    return orders.filter(pk=order_id).first()


def stock_levels_lock(*, variant_ids) -> list[StockLevel]:
    """Lock every stock row of these variants, in variant then warehouse order."""
    return list(
        StockLevel.objects.filter(variant_id__in=set(variant_ids))
        .select_related("warehouse")
        .order_by("variant_id", "warehouse_id")
        .select_for_update(of=("self",))
    )
