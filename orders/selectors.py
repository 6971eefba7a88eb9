"""Order reads: a customer's cart and orders."""

from decimal import Decimal

from django.db.models import Prefetch, QuerySet

from orders.models import CartItem, Order, OrderLine


def cart_items(*, customer_id: int) -> list[CartItem]:
    return list(
        CartItem.objects.filter(cart__customer_id=customer_id)
        .select_related("variant")
        .order_by("added_at", "id")
    )


def cart_get(*, customer_id: int) -> dict:
    """The cart as the API shows it: lines with prices now, and the subtotal."""
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
    return order_list(customer_id=customer_id).filter(pk=order_id).first()
