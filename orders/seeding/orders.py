"""The orders phase: two years of order history, with payments and coupons.

Orders are drawn oldest first (order_draws.py says from what), so their ids
grow with created_at as a live shop's do, and each is settled as checkout
and cancel would have left it: paid with a captured payment, failed with a
declined one, or cancelled with a capture and a refund.

The fake payment gateway is told about that history too (its ledger, see
orders/payments.py:history_record): a real gateway would remember the
money it took, and without it the refund of a cancelled seeded order is
refused. It is told through its own connection, as the app's role: the
ledger stands for another company's database, so the loader, whose grants
are exactly the tables the phase fills, is given none on it. That write
commits before the phase does; if the phase then fails and rolls back, the
gateway remembers charges under references no order has, which nothing
ever asks about, and a rerun of the same seed files the same entries again.

Historical orders leave stock alone. The stock levels the catalogue phase
wrote are today's, after every past sale; taking these sales off them again
would count each sale twice. So this phase never touches catalog_stock_level;
it writes the orders' movements into the stock ledger directly, balanced so
that each stock row's movements still add up to its stock
(stock_history.py).
"""

import random
import uuid
from collections.abc import Iterator, Sequence
from itertools import accumulate

from orders import payments
from orders.models import Coupon, CouponRedemption, Order, OrderLine, Payment
from shop.seeding.copy import CopyWriter
from shop.seeding.determinism import money
from shop.seeding.plan import Plan

from .coupons import COUPONS, usage_limit
from .order_draws import DAY, Catalog, Customers, at, order_moments
from .stock_history import seed_stock_history

STATUSES = ("paid", "cancelled", "failed")
STATUS_WEIGHTS = (85, 7, 8)
LINE_COUNTS = (1, 2, 3, 4, 5)
LINE_COUNT_CUM = tuple(accumulate((30, 25, 20, 15, 10)))  # 2.5 on average
QUANTITIES = (1, 2, 3, 4, 5)
QUANTITY_CUM = tuple(accumulate((78, 14, 5, 2, 1)))
# Lines served by a variant's second warehouse, where it has one.
SECOND_WAREHOUSE_SHARE = 0.2
ORDERS_PER_BATCH = 20_000
ORDER_FIELDS = ("id", "customer", "status", "subtotal", "discount", "total")
ORDER_FIELDS += ("coupon", "ship_line1", "ship_line2", "ship_city")
ORDER_FIELDS += ("ship_postal_code", "ship_country", "created_at", "updated_at")
ORDER_FIELDS += ("paid_at", "cancelled_at", "payment_reference")
LINE_FIELDS = ("order", "variant", "warehouse", "sku", "product_name")
LINE_FIELDS += ("unit_price", "quantity")
PAYMENT_FIELDS = ("order", "amount", "status", "gateway_reference", "created_at")
COUPON_FIELDS = ("id", "code", "percent_off", "valid_from", "valid_until")
COUPON_FIELDS += ("usage_limit", "times_used", "is_active")
REDEMPTION_FIELDS = ("coupon", "order", "customer", "created_at")
# Seeded orders' payment references are derived from their charge's gateway
# id, itself drawn from the phase's generator: the same seed gives the same
# pairs (so a reseed refiles entries the gateway holds already), and no
# extra draw shifts the rows drawn after it.
SEEDED_REFERENCES = uuid.uuid5(uuid.NAMESPACE_URL, "shop:seeded-payment-references")


def orders_row_count(plan: Plan) -> int:
    """Estimate the phase's rows for the progress bar; the draws settle it."""
    lines, payments, redemptions = 2.5, 1.07, 0.1
    # The ledger's history: a sale per paid line, a cancel per cancelled
    # one, and receipts (orders/seeding/stock_history.py).
    movements = 2.5 * 0.92 + 2.5 * 0.07 + 1.0
    rows = 1 + lines + payments + redemptions + movements
    return len(COUPONS) + round(plan.orders * rows)


def seed_orders(
    writer: CopyWriter,
    *,
    plan: Plan,
    rng: random.Random,
    customer_ids: Sequence[int],
) -> None:
    """Write plan.orders past orders of `customer_ids`, and what they entail."""
    catalog = Catalog(writer.using, rng)
    customers = Customers(writer.using, rng, customer_ids)
    history = _History(
        rng,
        plan=plan,
        catalog=catalog,
        customers=customers,
        coupon_ids=writer.reserve_ids(Coupon, len(COUPONS)),
    )
    if catalog.variant_ids and customers.ids:
        moments = order_moments(rng, plan.orders, catalog, customers)
        statuses = rng.choices(STATUSES, weights=STATUS_WEIGHTS, k=plan.orders)
        order_ids = writer.reserve_ids(Order, plan.orders)
        # Drawn and written a batch at a time, so memory holds one batch, not
        # two years. Lines, the largest table, go to COPY as they are drawn;
        # the batch's orders, payments and redemptions follow. Rows may come
        # before the rows they point at (lines before orders, orders before
        # coupons): the foreign keys are DEFERRABLE INITIALLY DEFERRED
        # (shop/migration_ops.py), so they are checked at commit.
        for start in range(0, plan.orders, ORDERS_PER_BATCH):
            batch = slice(start, start + ORDERS_PER_BATCH)
            lines = history.draw(order_ids[batch], moments[batch], statuses[batch])
            writer.copy(OrderLine, LINE_FIELDS, lines)
            writer.copy(Order, ORDER_FIELDS, history.orders)
            writer.copy(Payment, PAYMENT_FIELDS, history.payments)
            writer.copy(CouponRedemption, REDEMPTION_FIELDS, history.redemptions)
            payments.history_record(history.ledger)
    # Last, when every use is counted.
    writer.expect_more_rows(len(COUPONS))
    writer.copy(Coupon, COUPON_FIELDS, history.coupon_rows())
    seed_stock_history(writer)


class _History:
    """Turn order moments into rows: lines as they are drawn, the rest per batch."""

    def __init__(self, rng, *, plan: Plan, catalog, customers, coupon_ids):
        self.rng, self.catalog, self.customers = rng, catalog, customers
        self.coupon_ids = coupon_ids
        self.coupon_limits = [usage_limit(spec, plan.orders) for spec in COUPONS]
        self.coupon_uses = [0] * len(COUPONS)
        self.redeemed: set[tuple[int, int]] = set()  # (coupon, customer)
        self.has_ordered: set[int] = set()
        self.orders, self.payments, self.redemptions = [], [], []
        self.ledger: list[payments.HistoryEntry] = []

    def draw(self, order_ids, moments, statuses) -> Iterator[tuple]:
        """Yield the batch's lines; keep its orders, payments and redemptions,
        and the gateway's record of their charges and refunds."""
        self.orders, self.payments, self.redemptions = [], [], []
        self.ledger = []
        catalog = self.catalog
        for order_id, moment, status in zip(order_ids, moments, statuses, strict=True):
            subtotal = 0
            for position in self._basket(moment):
                price = catalog.price_at(position, moment)
                quantity = self.rng.choices(QUANTITIES, cum_weights=QUANTITY_CUM)[0]
                subtotal += price * quantity
                yield (
                    order_id,
                    catalog.variant_ids[position],
                    self._warehouse(position),
                    catalog.skus[position],
                    catalog.names[position],
                    money(price),
                    quantity,
                )
            self._settle(order_id, moment, status, subtotal)

    def _basket(self, moment: int) -> list[int]:
        """Return 1 to 5 distinct variants on sale at `moment`, in variant order."""
        wanted = self.rng.choices(LINE_COUNTS, cum_weights=LINE_COUNT_CUM)[0]
        chosen: set[int] = set()
        # Bounded: a tiny catalogue may have fewer variants on sale than wanted.
        for _ in range(wanted * 10):
            chosen.add(self.catalog.pick_variant(self.rng, moment))
            if len(chosen) == wanted:
                break
        # Checkout writes lines in variant order, too.
        return sorted(chosen)

    def _warehouse(self, position: int) -> int:
        other = self.catalog.other_warehouses[position]
        if other is not None and self.rng.random() < SECOND_WAREHOUSE_SHARE:
            return other
        return self.catalog.default_warehouse

    def _settle(self, order_id: int, moment: int, status: str, subtotal: int):
        rng, customers = self.rng, self.customers
        customer = customers.pick(rng, moment)
        coupon = self._coupon(customer, moment, status)
        discount = 0
        if coupon is not None:
            # As checkout computes it: a percentage of the subtotal, half up.
            discount = (subtotal * COUPONS[coupon].percent_off + 50) // 100
        total = money(subtotal - discount)
        settled = moment + rng.randint(2, 90)  # when the gateway answered
        reference = f"fake_{rng.getrandbits(64):016x}"
        payment_reference = str(uuid.uuid5(SEEDED_REFERENCES, reference))
        paid_at = cancelled_at = None
        updated = settled
        if status == "failed":
            self.payments.append((order_id, total, "declined", reference, at(settled)))
        else:
            paid_at = at(settled)
            self.payments.append((order_id, total, "captured", reference, paid_at))
            self.ledger.append(
                payments.HistoryEntry(
                    "charge", payment_reference, "captured", total, reference
                )
            )
        if status == "cancelled":
            updated = settled + rng.randint(1_800, min(14 * DAY, -settled - 60))
            cancelled_at = at(updated)
            # The shop's record of a seeded refund carries no gateway id, as
            # for a refund made before the shop recorded them; the gateway
            # knows it under one derived from the charge's.
            self.payments.append((order_id, total, "refunded", "", cancelled_at))
            self.ledger.append(
                payments.HistoryEntry(
                    "refund",
                    payment_reference,
                    "refunded",
                    total,
                    f"fake_re_{reference.removeprefix('fake_')}",
                )
            )
        if coupon is not None and status != "failed":
            self.redemptions.append(
                (self.coupon_ids[coupon], order_id, customers.ids[customer], at(moment))
            )
        self.orders.append(
            (
                order_id,
                customers.ids[customer],
                status,
                money(subtotal),
                money(discount),
                total,
                None if coupon is None else self.coupon_ids[coupon],
                *customers.address_at(customer, moment),
                at(moment),
                at(updated),
                paid_at,
                cancelled_at,
                payment_reference,
            )
        )
        self.has_ordered.add(customer)

    def _coupon(self, customer: int, moment: int, status: str) -> int | None:
        """Return the index of the coupon this order used, if any, counting its use."""
        when = at(moment)
        for index, spec in enumerate(COUPONS):
            if not spec.valid_from <= when < spec.valid_until:
                continue
            if spec.first_order_only and customer in self.has_ordered:
                continue
            limit = self.coupon_limits[index]
            if limit is not None and self.coupon_uses[index] >= limit:
                continue
            if (index, customer) in self.redeemed or self.rng.random() >= spec.uptake:
                continue
            # A failed checkout hands the use back (checkout._return_coupon),
            # but the order keeps its coupon and discount, as checkout leaves it.
            if status != "failed":
                self.coupon_uses[index] += 1
                self.redeemed.add((index, customer))
            return index
        return None

    def coupon_rows(self) -> Iterator[tuple]:
        for coupon_id, spec, limit, used in zip(
            self.coupon_ids, COUPONS, self.coupon_limits, self.coupon_uses, strict=True
        ):
            yield (
                coupon_id,
                spec.code,
                spec.percent_off,
                spec.valid_from,
                spec.valid_until,
                limit,
                used,
                spec.is_active,
            )
