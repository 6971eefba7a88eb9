"""Cart writes: add (or increment), change, remove. Validated against stock."""

from django.db import IntegrityError, connection
from django.db.models import F, Max, Sum

from catalog.models import ProductVariant, StockLevel
from orders.models import Cart, CartItem
from orders.services.checkout import MAX_ORDER_TOTAL
from shop.db_context import customer_transaction
from shop.errors import Conflict, InvalidRequest, NotFound
from shop.outbox import outbox_kick
from shop.sql_files import read_sql

MAX_LINE_QUANTITY = 1000


def _sellable_variant(sku: str) -> ProductVariant:
    variant = (
        ProductVariant.objects.select_related("product")
        .filter(sku=sku, is_active=True, product__is_active=True)
        .first()
    )
    if variant is None:
        raise InvalidRequest(
            f"No product on sale has the SKU {sku!r}.", code="unknown_sku"
        )
    return variant


def _available(variant_id: int) -> int:
    """Units one warehouse can ship: checkout serves a line from one warehouse
    (orders/services/checkout.py:_allocate), so the cart asks the same."""
    best = StockLevel.objects.filter(variant_id=variant_id).aggregate(
        units=Max(F("quantity_on_hand") - F("reserved"))
    )["units"]
    return max(best or 0, 0)


def _check_amount(cart_id: int, variant: ProductVariant, quantity: int) -> None:
    """A cart must stay payable: its total fits an order's NUMERIC(12, 2)."""
    others = (
        CartItem.objects.filter(cart_id=cart_id)
        .exclude(variant=variant)
        .aggregate(total=Sum(F("quantity") * F("variant__price")))["total"]
    )
    if (others or 0) + variant.price * quantity > MAX_ORDER_TOTAL:
        raise InvalidRequest(
            f"A cart may total at most {MAX_ORDER_TOTAL}.", code="amount_too_large"
        )


def _check_stock(variant: ProductVariant, quantity: int) -> None:
    available = _available(variant.pk)
    if quantity > available:
        raise Conflict(
            f"Only {available} unit(s) of {variant.sku} are available.",
            code="insufficient_stock",
            skus=[variant.sku],
            available=available,
        )


def _cart_for(customer_id: int) -> Cart:
    # get_or_create is safe here: Cart.customer is UNIQUE, so a race ends in
    # an IntegrityError that get_or_create answers by reading the winner's row.
    cart, _ = Cart.objects.get_or_create(customer_id=customer_id)
    return cart


def cart_item_add(*, customer_id: int, sku: str, quantity: int) -> CartItem:
    """Add units of a SKU to the customer's cart, incrementing an existing line."""
    variant = _sellable_variant(sku)
    with customer_transaction(customer_id):
        outbox_kick()  # its cart event, shipped after COMMIT
        cart = _cart_for(customer_id)
        params = {"cart_id": cart.pk, "variant_id": variant.pk, "quantity": quantity}
        try:
            with connection.cursor() as cursor:
                cursor.execute(
                    read_sql("orders/sql/queries/cart_item_add_v01.sql"), params
                )
                item_id, new_quantity = cursor.fetchone()
        except IntegrityError as exc:
            raise InvalidRequest(
                f"A cart line holds at most {MAX_LINE_QUANTITY} units.",
                code="quantity_too_large",
            ) from exc
        # Checked after the increment, inside the transaction: a failure rolls
        # the increment back, so the cart never holds more than is available.
        _check_stock(variant, new_quantity)
        _check_amount(cart.pk, variant, new_quantity)
        return CartItem.objects.select_related("variant").get(pk=item_id)


def _own_item(customer_id: int, item_id: int) -> CartItem:
    item = (
        CartItem.objects.select_related("variant__product")
        .filter(pk=item_id, cart__customer_id=customer_id)
        .first()
    )
    if item is None:
        raise NotFound("This cart line does not exist.")
    return item


def cart_item_update(*, customer_id: int, item_id: int, quantity: int) -> CartItem:
    """Set the quantity of one of the customer's cart lines."""
    with customer_transaction(customer_id):
        outbox_kick()  # its cart event, shipped after COMMIT
        item = _own_item(customer_id, item_id)
        _check_stock(item.variant, quantity)
        _check_amount(item.cart_id, item.variant, quantity)
        CartItem.objects.filter(pk=item.pk).update(quantity=quantity)
    item.quantity = quantity
    return item


def cart_item_remove(*, customer_id: int, item_id: int) -> None:
    """Remove one of the customer's cart lines."""
    with customer_transaction(customer_id):
        outbox_kick()  # its cart event, shipped after COMMIT
        deleted, _ = CartItem.objects.filter(
            pk=item_id, cart__customer_id=customer_id
        ).delete()
    if not deleted:
        raise NotFound("This cart line does not exist.")
