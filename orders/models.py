"""Orders: carts, orders and their lines, payments, coupons, idempotency keys, the
stock ledger.

Money is NUMERIC(12, 2) everywhere. The order keeps *copies* of what it was
sold at (unit price, SKU, product name, shipping address): they are
historical facts, not data to keep in sync, so they are a deliberate
departure from third normal form (chapter 03).
"""

import uuid

from django.contrib.postgres.functions import RandomUUID
from django.db import models
from django.db.models import F, Q
from django.utils import timezone

MONEY = {"max_digits": 12, "decimal_places": 2}


def new_payment_reference() -> str:
    """A fresh reference for an order's charge and refund at the gateway.

    The gateway moves money once per reference, so the reference is what
    makes a repeated charge or refund of the order safe, and what recovery
    asks the gateway about. Random, never derived from the order's id: ids
    start again after `seed --reset` (RESTART IDENTITY) and in every new
    test database, while the gateway remembers every reference it was ever
    sent, so `order-<id>` let a new order be "paid" by an old capture.
    """
    return str(uuid.uuid4())


class Cart(models.Model):
    # One open cart per customer: the cart is emptied at checkout, not closed.
    customer = models.OneToOneField(
        "accounts.Customer", on_delete=models.CASCADE, related_name="cart"
    )
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(default=timezone.now)

    class Meta:
        db_table = "orders_cart"

    def __str__(self):
        return f"cart of {self.customer_id}"


class CartItem(models.Model):
    cart = models.ForeignKey(Cart, on_delete=models.CASCADE, related_name="items")
    # CASCADE: a cart line for a variant that no longer exists is meaningless;
    # orders, unlike carts, PROTECT the variants they sold.
    variant = models.ForeignKey(
        "catalog.ProductVariant", on_delete=models.CASCADE, related_name="+"
    )
    quantity = models.IntegerField()
    added_at = models.DateTimeField(default=timezone.now)

    class Meta:
        db_table = "orders_cart_item"
        constraints = [
            models.UniqueConstraint(
                fields=["cart", "variant"], name="orders_cart_item_one_line_per_variant"
            ),
            models.CheckConstraint(
                condition=Q(quantity__gt=0) & Q(quantity__lte=1000),
                name="orders_cart_item_quantity_1_to_1000",
            ),
        ]

    def __str__(self):
        return f"{self.quantity} x {self.variant_id}"


class Coupon(models.Model):
    code = models.CharField(max_length=32)
    percent_off = models.SmallIntegerField()
    valid_from = models.DateTimeField()
    valid_until = models.DateTimeField()
    usage_limit = models.IntegerField(null=True, blank=True)
    times_used = models.IntegerField(default=0)
    is_active = models.BooleanField(default=True)

    class Meta:
        db_table = "orders_coupon"
        constraints = [
            models.UniqueConstraint(fields=["code"], name="orders_coupon_code_uniq"),
            models.CheckConstraint(
                condition=Q(percent_off__gte=1) & Q(percent_off__lte=100),
                name="orders_coupon_percent_1_to_100",
            ),
            models.CheckConstraint(
                condition=Q(valid_until__gt=F("valid_from")),
                name="orders_coupon_window_not_empty",
            ),
            models.CheckConstraint(
                condition=Q(usage_limit__isnull=True) | Q(usage_limit__gt=0),
                name="orders_coupon_usage_limit_positive",
            ),
            # The usage limit holds even if two checkouts race for the last use.
            models.CheckConstraint(
                condition=Q(times_used__gte=0)
                & (Q(usage_limit__isnull=True) | Q(times_used__lte=F("usage_limit"))),
                name="orders_coupon_times_used_within_limit",
            ),
            models.CheckConstraint(
                condition=Q(code__regex=r"^[A-Z0-9-]+$"),
                name="orders_coupon_code_format",
            ),
        ]

    def __str__(self):
        return self.code


class Order(models.Model):
    class Status(models.TextChoices):
        PENDING = "pending"  # stock reserved, payment not yet answered
        PAID = "paid"  # payment captured, reservation turned into a sale
        FAILED = "failed"  # payment declined or abandoned; stock released
        CANCELLED = "cancelled"  # cancelled by the customer after payment

    # PROTECT: an order is a financial record; its customer cannot vanish.
    customer = models.ForeignKey(
        "accounts.Customer", on_delete=models.PROTECT, related_name="orders"
    )
    status = models.CharField(max_length=16, default=Status.PENDING)
    subtotal = models.DecimalField(**MONEY)
    discount = models.DecimalField(default=0, **MONEY)
    total = models.DecimalField(**MONEY)
    coupon = models.ForeignKey(
        Coupon, null=True, blank=True, on_delete=models.PROTECT, related_name="orders"
    )
    # The shipping address as it was at checkout (a snapshot, see chapter 03):
    # a later change of the customer's address must not rewrite where a past
    # parcel went.
    ship_line1 = models.CharField(max_length=200)
    ship_line2 = models.CharField(max_length=200, blank=True, default="")
    ship_city = models.CharField(max_length=100)
    ship_postal_code = models.CharField(max_length=20)
    ship_country = models.CharField(max_length=2)
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(default=timezone.now)
    paid_at = models.DateTimeField(null=True, blank=True)
    cancelled_at = models.DateTimeField(null=True, blank=True)
    # The shop's name for this order's charge and refund at the payment
    # gateway (see new_payment_reference). The database default covers rows
    # written by raw SQL (the labs).
    payment_reference = models.CharField(
        max_length=64,
        default=new_payment_reference,
        db_default=RandomUUID(),
        editable=False,
    )

    class Meta:
        db_table = "orders_order"
        constraints = [
            models.CheckConstraint(
                condition=Q(status__in=["pending", "paid", "failed", "cancelled"]),
                name="orders_order_status_valid",
            ),
            models.CheckConstraint(
                condition=Q(subtotal__gte=0) & Q(discount__gte=0) & Q(total__gte=0),
                name="orders_order_amounts_non_negative",
            ),
            models.CheckConstraint(
                condition=Q(total=F("subtotal") - F("discount")),
                name="orders_order_total_is_subtotal_minus_discount",
            ),
            models.CheckConstraint(
                condition=Q(ship_country__regex=r"^[A-Z]{2}$"),
                name="orders_order_ship_country_iso2",
            ),
            # Paid and later cancelled orders were paid; pending and failed
            # ones never were.
            models.CheckConstraint(
                condition=Q(status__in=["paid", "cancelled"], paid_at__isnull=False)
                | Q(status__in=["pending", "failed"], paid_at__isnull=True),
                name="orders_order_paid_at_matches_status",
            ),
            models.CheckConstraint(
                condition=Q(status="cancelled", cancelled_at__isnull=False)
                | (~Q(status="cancelled") & Q(cancelled_at__isnull=True)),
                name="orders_order_cancelled_at_matches_status",
            ),
            models.CheckConstraint(
                condition=(Q(paid_at__isnull=True) | Q(paid_at__gte=F("created_at")))
                & (Q(cancelled_at__isnull=True) | Q(cancelled_at__gte=F("paid_at"))),
                name="orders_order_timestamps_in_order",
            ),
            # The gateway moves money once per reference: two orders sharing
            # one could be paid by each other's capture.
            models.UniqueConstraint(
                fields=["payment_reference"],
                name="orders_order_payment_reference_uniq",
            ),
        ]
        indexes = [
            # A customer's order list, newest first, id breaking ties: the
            # page and its keyset come out of the index in order, no sort.
            models.Index(
                fields=["customer", "-created_at", "-id"],
                name="orders_order_customer_page_idx",
            ),
            models.Index(fields=["created_at"], name="orders_order_created_idx"),
            # Recovery and the release procedure look for old pending
            # orders: a handful among all orders ever placed.
            models.Index(
                fields=["created_at"],
                condition=Q(status="pending"),
                name="orders_order_pending_idx",
            ),
        ]

    def __str__(self):
        return f"order {self.pk} ({self.status})"


class OrderLine(models.Model):
    order = models.ForeignKey(Order, on_delete=models.CASCADE, related_name="lines")
    # PROTECT: a sold variant stays, so the line can always be traced to it.
    variant = models.ForeignKey(
        "catalog.ProductVariant", on_delete=models.PROTECT, related_name="order_lines"
    )
    # The warehouse the units were reserved in; one per line, the default
    # warehouse first (services.py: checkout allocation).
    warehouse = models.ForeignKey(
        "catalog.Warehouse", on_delete=models.PROTECT, related_name="order_lines"
    )
    # Snapshots of what was sold, at the price it was sold at.
    sku = models.CharField(max_length=64)
    product_name = models.CharField(max_length=200)
    unit_price = models.DecimalField(**MONEY)
    quantity = models.IntegerField()

    class Meta:
        db_table = "orders_order_line"
        constraints = [
            models.UniqueConstraint(
                fields=["order", "variant"], name="orders_order_line_one_per_variant"
            ),
            models.CheckConstraint(
                condition=Q(quantity__gt=0), name="orders_order_line_quantity_positive"
            ),
            models.CheckConstraint(
                condition=Q(unit_price__gte=0),
                name="orders_order_line_price_non_negative",
            ),
        ]

    def __str__(self):
        return f"{self.quantity} x {self.sku}"

    @property
    def line_total(self):
        return self.unit_price * self.quantity


# A payment row is one of two kinds, told apart by its status (Payment).
CHARGE_STATUSES = ["unknown", "not_captured", "declined", "captured"]
REFUND_STATUSES = ["refund_pending", "refunded", "refund_failed"]


class Payment(models.Model):
    """What the payment gateway did for an order: its charge, and any refund.

    At most one charge row and one refund row per order. Both only move
    forward: a charge row towards certainty (unknown < not_captured <
    declined < captured, orders/sql/queries/payment_record_v01.sql),
    a refund row from owed to done.
    """

    class Status(models.TextChoices):
        # The charge, made under the order's payment_reference.
        UNKNOWN = "unknown"  # the gateway did not answer: it may have captured
        NOT_CAPTURED = "not_captured"  # asked by reference: no charge there
        DECLINED = "declined"
        CAPTURED = "captured"
        # The refund of a captured charge. Pending is written in the same
        # transaction as the decision (a cancel, an expired checkout), so a
        # crash before the gateway call cannot lose it; recovery retries it.
        REFUND_PENDING = "refund_pending"
        REFUNDED = "refunded"  # gateway_reference is the refund's own id
        # The gateway refused the refund (nothing captured under the
        # reference, or less than owed): final, never retried, for staff to
        # settle by hand (orders/admin.py lists them).
        REFUND_FAILED = "refund_failed"

    order = models.ForeignKey(Order, on_delete=models.PROTECT, related_name="payments")
    amount = models.DecimalField(**MONEY)
    status = models.CharField(max_length=16)
    gateway_reference = models.CharField(max_length=64, blank=True, default="")
    created_at = models.DateTimeField(default=timezone.now)
    # When recovery last asked the gateway about this charge, and how many
    # times it has: each ask waits twice as long as the one before, up to a
    # cap (orders/services/orders.py:checkout_recover), so an order whose
    # answer stays in doubt costs a few lookups a day, not one per run.
    gateway_asked_at = models.DateTimeField(null=True, blank=True)
    gateway_asks = models.IntegerField(default=0, db_default=0)

    class Meta:
        db_table = "orders_payment"
        constraints = [
            models.CheckConstraint(
                condition=Q(status__in=CHARGE_STATUSES + REFUND_STATUSES),
                name="orders_payment_status_valid",
            ),
            models.CheckConstraint(
                condition=Q(amount__gte=0), name="orders_payment_amount_non_negative"
            ),
            models.CheckConstraint(
                condition=Q(gateway_asks__gte=0),
                name="orders_payment_gateway_asks_non_negative",
            ),
            # One charge per order, as the gateway captures at most once per
            # reference; checkout and recovery write it with ON CONFLICT.
            models.UniqueConstraint(
                fields=["order"],
                condition=Q(status__in=CHARGE_STATUSES),
                name="orders_payment_one_charge_per_order",
            ),
            # One refund per order: a cancel retried, or recovery and a
            # request both seeing it owed, can never refund twice; and a
            # refund the gateway refused is not owed again.
            models.UniqueConstraint(
                fields=["order"],
                condition=Q(status__in=REFUND_STATUSES),
                name="orders_payment_one_refund_per_order",
            ),
        ]
        indexes = [
            # Recovery's retry of owed refunds reads only these few rows.
            models.Index(
                fields=["created_at"],
                condition=Q(status="refund_pending"),
                name="orders_payment_refund_due_idx",
            ),
        ]

    def __str__(self):
        return f"{self.status} {self.amount}"


class CouponRedemption(models.Model):
    coupon = models.ForeignKey(
        Coupon, on_delete=models.PROTECT, related_name="redemptions"
    )
    order = models.OneToOneField(
        Order, on_delete=models.CASCADE, related_name="redemption"
    )
    customer = models.ForeignKey(
        "accounts.Customer", on_delete=models.PROTECT, related_name="coupon_redemptions"
    )
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        db_table = "orders_coupon_redemption"
        constraints = [
            models.UniqueConstraint(
                fields=["coupon", "customer"],
                name="orders_redemption_once_per_customer",
            ),
        ]

    def __str__(self):
        return f"{self.coupon_id} on {self.order_id}"


class IdempotencyKey(models.Model):
    """A checkout request's key, its fingerprint and, once finished, its response.

    A key still in progress may carry a provisional response (a payment whose
    outcome is not known yet), replayed until recovery settles the checkout.
    Completed keys are purged after settings.IDEMPOTENCY_KEY_RETENTION.
    """

    class Status(models.TextChoices):
        IN_PROGRESS = "in_progress"
        COMPLETED = "completed"

    customer = models.ForeignKey(
        "accounts.Customer", on_delete=models.CASCADE, related_name="idempotency_keys"
    )
    key = models.CharField(max_length=255)
    request_fingerprint = models.CharField(max_length=64)
    status = models.CharField(max_length=16, default=Status.IN_PROGRESS)
    order = models.ForeignKey(
        Order, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    response_status = models.SmallIntegerField(null=True, blank=True)
    response_body = models.JSONField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(default=timezone.now)

    class Meta:
        db_table = "orders_idempotency_key"
        constraints = [
            models.UniqueConstraint(
                fields=["customer", "key"], name="orders_idempotency_key_per_customer"
            ),
            models.CheckConstraint(
                condition=Q(status__in=["in_progress", "completed"]),
                name="orders_idempotency_status_valid",
            ),
            models.CheckConstraint(
                condition=Q(status="in_progress")
                | (Q(response_status__isnull=False) & Q(response_body__isnull=False)),
                name="orders_idempotency_completed_has_response",
            ),
        ]
        indexes = [
            # The purge of expired keys (idempotency_key_purge_v01.sql) reads
            # the oldest completed keys, never the ones still in progress.
            models.Index(
                fields=["updated_at"],
                condition=Q(status="completed"),
                name="orders_idem_key_completed_idx",
            ),
        ]

    def __str__(self):
        return f"{self.key} ({self.status})"


class StockMovement(models.Model):
    """The stock ledger: one row per change of a stock level, written by a trigger."""

    stock_level = models.ForeignKey(
        "catalog.StockLevel", on_delete=models.CASCADE, related_name="movements"
    )
    on_hand_delta = models.IntegerField()
    reserved_delta = models.IntegerField()
    reason = models.CharField(max_length=64)
    order = models.ForeignKey(
        Order, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        db_table = "orders_stock_movement"
        constraints = [
            models.CheckConstraint(
                condition=~Q(on_hand_delta=0) | ~Q(reserved_delta=0),
                name="orders_stock_movement_changes_something",
            ),
        ]
        indexes = [
            models.Index(
                fields=["stock_level", "created_at"], name="orders_movement_level_idx"
            )
        ]

    def __str__(self):
        return f"{self.stock_level_id}: {self.on_hand_delta:+}/{self.reserved_delta:+}"
