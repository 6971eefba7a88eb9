"""The orders' docs snapshots: the row locks orders/locks.py takes (chapter 12)
and the conditional UPDATE that reserves stock (11).

shop/snapshots.py says how `manage.py docs_snapshots` finds this module.
"""

from orders.labs.strategies import reserve_conditional
from orders.locks import cart_lock, order_lock, stock_levels_lock
from shop.snapshots import rolled_back_sql, snapshot


@snapshot("locks-stock-levels.sql")
def stock_levels_lock_sql() -> str:
    return rolled_back_sql(
        lambda: stock_levels_lock(variant_ids=[2, 1]),
        "orders.locks.stock_levels_lock(variant_ids=[2, 1]), in a transaction",
    )


@snapshot("locks-cart.sql")
def cart_lock_sql() -> str:
    return rolled_back_sql(
        lambda: cart_lock(customer_id=1),
        "orders.locks.cart_lock(customer_id=1), in a transaction",
    )


@snapshot("locks-order.sql")
def order_lock_sql() -> str:
    return rolled_back_sql(
        lambda: order_lock(order_id=1),
        "orders.locks.order_lock(order_id=1), in a transaction",
    )


@snapshot("orm-reserve-conditional.sql")
def reserve_conditional_sql() -> str:
    return rolled_back_sql(
        lambda: reserve_conditional(level_id=1, quantity=2),
        "orders.labs.strategies.reserve_conditional(level_id=1, quantity=2), "
        "rolled back",
    )
