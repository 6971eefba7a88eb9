"""Order writes, one module per use case; import from here."""

from orders.services.cart import cart_item_add, cart_item_remove, cart_item_update
from orders.services.checkout import (
    CheckoutOutcome,
    OrderPlaced,
    ShippingAddress,
    checkout,
)
from orders.services.idempotency import (
    Replay,
    idempotency_key_purge,
    request_fingerprint,
)
from orders.services.orders import RecoveryReport, checkout_recover, order_cancel
from orders.services.refunds import payment_refund

__all__ = [
    "CheckoutOutcome",
    "OrderPlaced",
    "RecoveryReport",
    "Replay",
    "ShippingAddress",
    "cart_item_add",
    "cart_item_remove",
    "cart_item_update",
    "checkout",
    "checkout_recover",
    "idempotency_key_purge",
    "order_cancel",
    "payment_refund",
    "request_fingerprint",
]
