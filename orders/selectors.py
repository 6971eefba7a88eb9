"""Order reads: a customer's cart and orders.

Row-level security shows these tables only to a transaction that says who
is acting (shop/db_context.py), so every read here runs in the customer's
own transaction; `order_list` returns a lazy QuerySet, which its caller
evaluates inside one (orders/api/views.py:OrderListApi).
"""

from decimal import Decimal

from django.db.models import Prefetch, QuerySet

from orders.models import CartItem, Order, OrderLine
from shop.db_context import customer_transaction


def cart_items(*, customer_id: int) -> list[CartItem]:
    """The cart's lines; the caller's transaction must act for the customer."""
    return list(
        CartItem.objects.filter(cart__customer_id=customer_id)
        .select_related("variant")
        .order_by("added_at", "id")
    )


def cart_get(*, customer_id: int) -> dict:
    """The cart as the API shows it: lines with prices now, and the subtotal."""
    with customer_transaction(customer_id):
        items = cart_items(customer_id=customer_id)
    lines = [
        {
            "id": item.pk,
            "sku": item.variant.sku,
            "quantity": item.quantity,
            "unit_price": item.variant.price,
            "line_total": item.variant.price * item.quantity,
        }
        for item in items
    ]
    subtotal = sum((line["line_total"] for line in lines), Decimal("0.00"))
    return {"items": lines, "subtotal": subtotal}


def order_list(*, customer_id: int) -> QuerySet[Order]:
    """The customer's orders, newest first, lines prefetched in one query."""
    lines = OrderLine.objects.order_by("id")
    return (
        Order.objects.filter(customer_id=customer_id)
        .prefetch_related(Prefetch("lines", queryset=lines))
        .order_by("-created_at", "-id")
    )


def order_get(*, customer_id: int, order_id: int) -> Order | None:
    """One of the customer's orders with its lines, or None."""
    with customer_transaction(customer_id):
        return order_list(customer_id=customer_id).filter(pk=order_id).first()
