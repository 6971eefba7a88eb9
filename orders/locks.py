"""The only place rows are locked, always in one global order:

    cart -> order -> stock levels (by variant id, then warehouse id)
         -> products (by id) -> coupons (by id)

Products are locked by catalog_product.in_stock's trigger when a stock
write changes whether a product has a unit available
(catalog/sql/triggers/product_in_stock_v01.sql); whoever locks coupons
takes them after the stock writes, as checkout does, or locks the products
first (orders/sql/procedures/release_stale_reservations_v04.sql).

Two transactions that take locks in the same order can wait for each other
but never in a cycle, so they cannot deadlock (chapter 12).

The locks that open checkout's phases also set the transaction's context,
in the same statement: they take the `context` that
customer_transaction(..., in_first_statement=True) gives
(shop/db_context.py), and save a round trip each.
"""

from dataclasses import dataclass

from django.db import connection

from orders.models import Cart, Order
from shop.db_context import Context
from shop.sql_files import read_sql

SQL = "orders/sql/queries"


def cart_lock(*, customer_id: int, context: Context | None = None) -> Cart | None:
    """Lock the customer's cart (None if none): one phase 1 per cart at a time.

    With `context`, as the transaction's first statement, which also sets
    it; the cart then comes back as its id alone (cart_lock_v01.sql).
    """
    if context is None:
        return Cart.objects.select_for_update().filter(customer_id=customer_id).first()
    with connection.cursor() as cursor:
        cursor.execute(
            read_sql(f"{SQL}/cart_lock_v01.sql"),
            {**context.params, "customer_id": customer_id},
        )
        row = cursor.fetchone()
    return None if row is None else Cart(id=row[0], customer_id=customer_id)


def order_lock(*, order_id: int, skip_locked: bool = False) -> Order | None:
    """Lock one order; with skip_locked, None if someone else holds it."""
    orders = Order.objects.select_for_update(of=("self",), skip_locked=skip_locked)
    return orders.filter(pk=order_id).first()


@dataclass(frozen=True)
class LockedStock:
    """A stock row under this transaction's lock, as allocation reads it."""

    id: int
    variant_id: int
    warehouse_id: int
    available: int
    warehouse_is_default: bool

    @property
    def pk(self) -> int:
        return self.id


def stock_levels_lock(*, variant_ids) -> list[LockedStock]:
    """Lock every stock row of these variants, in variant then warehouse order.

    Raw SQL (stock_levels_lock_v01.sql), not a QuerySet: checkout takes
    this lock twice, and building the QuerySet and its model instances
    cost several times the round trip itself.
    """
    with connection.cursor() as cursor:
        cursor.execute(
            read_sql(f"{SQL}/stock_levels_lock_v01.sql"),
            # In the caller's order: the query's ORDER BY decides the lock's.
            {"variant_ids": list(dict.fromkeys(variant_ids))},
        )
        return [LockedStock(*row) for row in cursor.fetchall()]


def order_and_stock_lock(
    *, order_id: int, variant_ids, context: Context
) -> tuple[Order | None, list[LockedStock]]:
    """order_lock, then stock_levels_lock, as one statement that also sets the
    transaction's context (order_and_stock_lock_v01.sql): checkout's phase 3.

    The order comes back with the columns phase 3 reads, the others deferred;
    (None, []) if there is no such order.
    """
    with connection.cursor() as cursor:
        cursor.execute(
            read_sql(f"{SQL}/order_and_stock_lock_v01.sql"),
            {
                **context.params,
                "order_id": order_id,
                "variant_ids": list(dict.fromkeys(variant_ids)),
            },
        )
        rows = cursor.fetchall()
        names = [column.name for column in cursor.description[:ORDER_COLUMNS]]
    if not rows:
        return None, []
    # The order's columns are in the model's field order, which from_db()
    # expects.
    order = Order.from_db(connection.alias, names, rows[0][:ORDER_COLUMNS])
    return order, [LockedStock(*row[ORDER_COLUMNS:]) for row in rows]


# How many of order_and_stock_lock_v01.sql's columns are the order's.
ORDER_COLUMNS = 10
