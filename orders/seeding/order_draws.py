"""What the orders phase draws from: when, who, and what, each with its skew.

Skewed on purpose, to give the analytics chapters something to find: a few
customers order often and most rarely (Pareto), a few products sell far more
than the rest (Zipf), and November and December are busier than July.
Moments are whole seconds relative to BASE_TIME (negative: in the past);
nothing is sold before its product existed or bought before its customer
joined.
"""

import random
from bisect import bisect_right
from collections.abc import Sequence
from datetime import date, timedelta
from itertools import accumulate

from catalog.models import Product, ProductVariant, StockLevel, Warehouse
from shop.accounts.models import Address, Customer
from shop.accounts.seeding.accounts import random_address
from shop.seeding.determinism import BASE_TIME

DAY = 86_400
HISTORY_DAYS = 730
# Every order is settled well before BASE_TIME: none is left mid-checkout.
LATEST_ORDER = -3_600
# Orders by hour of day (UTC): quiet at night, busiest in the evening.
HOUR_WEIGHTS = (2, 1, 1, 1, 1, 2, 3, 5, 6, 7, 8, 8, 9, 8, 8, 8, 9, 10, 12, 13, 13, 11)
HOUR_WEIGHTS += (7, 4)
# The product at popularity rank r sells in proportion to 1 / (r + offset):
# the offset keeps the top few from taking a third of all sales.
ZIPF_OFFSET = 10
# Customer activity is Pareto-distributed and capped, so the keenest
# customer orders weekly rather than hourly.
ACTIVITY_SHAPE = 1.2
ACTIVITY_CAP = 60.0
# Customers who moved house during the two years: their earlier orders went
# to an address that is no longer their default (the point of the snapshot).
MOVED_SHARE = 0.10
# Variants whose price changed once during the two years.
PRICE_CHANGED_SHARE = 0.35
# Draws of a skewed pick that must also have existed at the order's moment,
# before falling back to a uniform draw among those that did.
SKEWED_TRIES = 20
# What an order's shipping snapshot copies from an address.
ADDRESS_FIELDS = ("line1", "line2", "city", "postal_code", "country")


def at(moment: int):
    return BASE_TIME + timedelta(seconds=moment)


def to_seconds(when) -> int:
    return int((when - BASE_TIME).total_seconds())


class Catalog:
    """The variants on sale, as parallel lists; products ranked by popularity.

    A variant is known by its position in these lists; positions follow
    product id, then variant id. A product's popularity rank is its position
    among products, as in the reviews phase, so bestsellers are also the
    most reviewed.
    """

    def __init__(self, using: str, rng: random.Random):
        # Plain one-table reads, joined here: the tables were filled moments
        # ago and their statistics may still say they are empty (autovacuum
        # analysed them mid-load). A join planned on that, nested loops over
        # 300,000 rows, ran into shop_app's 30-second statement_timeout.
        products = {
            product_id: (name, to_seconds(created))
            for product_id, name, created in Product.objects.using(using)
            .filter(is_active=True)
            .values_list("id", "name", "created_at")
        }
        self.default_warehouse = (
            Warehouse.objects.using(using).filter(is_default=True).get().pk
        )
        # A variant's other warehouse, if it is stocked in one.
        elsewhere = {}
        for variant_id, warehouse_id in (
            StockLevel.objects.using(using)
            .exclude(warehouse=self.default_warehouse)
            .order_by("variant_id", "warehouse_id")
            .values_list("variant_id", "warehouse_id")
        ):
            elsewhere.setdefault(variant_id, warehouse_id)
        self.variant_ids, self.skus, self.names, self.prices = [], [], [], []
        self.other_warehouses = []
        # Per product: its first variant's position, how many it has, and
        # when it appeared.
        self.first, self.count, self.created = [], [], []
        last_product = None
        for variant_id, sku, price, product_id in (
            ProductVariant.objects.using(using)
            .filter(is_active=True)
            .order_by("product_id", "id")
            .values_list("id", "sku", "price", "product_id")
        ):
            if product_id not in products:
                continue
            name, created = products[product_id]
            if product_id != last_product:
                last_product = product_id
                self.first.append(len(self.variant_ids))
                self.count.append(0)
                self.created.append(created)
            self.count[-1] += 1
            self.variant_ids.append(variant_id)
            self.skus.append(sku)
            self.names.append(name)
            self.prices.append(int(price.scaleb(2)))
            self.other_warehouses.append(elsewhere.get(variant_id))
        ranks = range(len(self.first))
        self.popularity = list(accumulate(1 / (rank + ZIPF_OFFSET) for rank in ranks))
        self.by_created = sorted(ranks, key=self.created.__getitem__)
        self.created_sorted = [self.created[index] for index in self.by_created]
        self.former_prices = self._price_changes(rng)

    def _price_changes(self, rng: random.Random) -> dict[int, tuple[int, int]]:
        """Return {variant position: (moment of the change, price before it)}."""
        variants = len(self.variant_ids)
        changed = rng.sample(range(variants), round(variants * PRICE_CHANGED_SHARE))
        changes = {}
        for position in sorted(changed):
            # Mostly rises; the old price ends in .99 like most new ones.
            factor = rng.uniform(0.75, 1.05)
            former = max(99, round(self.prices[position] * factor / 100) * 100 - 1)
            changes[position] = (rng.randint(-HISTORY_DAYS * DAY, -DAY), former)
        return changes

    def price_at(self, position: int, moment: int) -> int:
        """Return the variant's price in cents at `moment`."""
        change = self.former_prices.get(position)
        if change is not None and moment < change[0]:
            return change[1]
        return self.prices[position]

    def pick_variant(self, rng: random.Random, moment: int) -> int:
        """Return the position of a variant on sale at `moment`, bestsellers first."""
        product = None
        for _ in range(SKEWED_TRIES):
            draw = bisect_right(self.popularity, rng.random() * self.popularity[-1])
            if self.created[draw] <= moment:
                product = draw
                break
        if product is None:
            on_sale = bisect_right(self.created_sorted, moment)
            product = self.by_created[rng.randrange(on_sale)]
        # A product's first variant (the plain option, no surcharge) sells most.
        offset = 0 if rng.random() < 0.4 else rng.randrange(self.count[product])
        return self.first[product] + offset


class Customers:
    """Who orders, how keenly, and where their parcels went when."""

    def __init__(self, using: str, rng: random.Random, customer_ids: Sequence[int]):
        # One-table reads joined here, for the reason Catalog gives.
        wanted = set(customer_ids)
        defaults, others = {}, {}
        for customer_id, is_default, *address in (
            Address.objects.using(using)
            .order_by("customer_id", "id")
            .values_list("customer_id", "is_default", *ADDRESS_FIELDS)
        ):
            if is_default:
                defaults[customer_id] = tuple(address)
            else:
                others.setdefault(customer_id, tuple(address))
        self.ids, self.joined, self.addresses, self.moves = [], [], [], []
        for customer_id, created in (
            Customer.objects.using(using).order_by("id").values_list("id", "created_at")
        ):
            # Nobody ships to a customer without a default address.
            if customer_id not in wanted or customer_id not in defaults:
                continue
            joined = to_seconds(created)
            self.ids.append(customer_id)
            self.joined.append(joined)
            self.addresses.append(defaults[customer_id])
            self.moves.append(_move(rng, joined, others.get(customer_id)))
        self.activity = list(
            accumulate(
                min(rng.paretovariate(ACTIVITY_SHAPE), ACTIVITY_CAP) for _ in self.ids
            )
        )
        self.by_joined = sorted(range(len(self.ids)), key=self.joined.__getitem__)
        self.joined_sorted = [self.joined[index] for index in self.by_joined]

    def pick(self, rng: random.Random, moment: int) -> int:
        """Return the position of a customer who had joined by `moment`, keen first."""
        for _ in range(SKEWED_TRIES):
            draw = bisect_right(self.activity, rng.random() * self.activity[-1])
            if self.joined[draw] <= moment:
                return draw
        joined = bisect_right(self.joined_sorted, moment)
        return self.by_joined[rng.randrange(joined)]

    def address_at(self, customer: int, moment: int) -> tuple:
        """Return the customer's default address at `moment`: five snapshot values."""
        move = self.moves[customer]
        if move is not None and moment < move[0]:
            return move[1]
        return self.addresses[customer]


def _move(rng, joined, other_address) -> tuple[int, tuple] | None:
    """Return (moment of the move, former address), or None if the customer stayed."""
    if rng.random() >= MOVED_SHARE:
        return None
    moment = rng.randint(max(joined, -HISTORY_DAYS * DAY), LATEST_ORDER)
    # The old home is still on file as a second address, or long deleted.
    if other_address is not None and rng.random() < 0.5:
        return moment, other_address
    return moment, random_address(rng)


def order_moments(
    rng: random.Random, count: int, catalog: Catalog, customers: Customers
) -> list[int]:
    """Draw `count` order moments over the two years, oldest first."""
    start = -HISTORY_DAYS * DAY
    first_day = BASE_TIME.date() - timedelta(days=HISTORY_DAYS)
    day_weights = accumulate(
        _day_weight(index, first_day + timedelta(days=index))
        for index in range(HISTORY_DAYS)
    )
    days = rng.choices(range(HISTORY_DAYS), cum_weights=list(day_weights), k=count)
    hours = rng.choices(range(24), weights=HOUR_WEIGHTS, k=count)
    # Nobody orders before the first customer joined or the first product existed.
    floor = max(customers.joined_sorted[0], catalog.created_sorted[0])
    moments = [
        min(
            max(start + day * DAY + hour * 3_600 + rng.randrange(3_600), floor),
            LATEST_ORDER,
        )
        for day, hour in zip(days, hours, strict=True)
    ]
    moments.sort()
    return moments


def _day_weight(index: int, day: date) -> float:
    growth = 0.7 + 0.6 * index / HISTORY_DAYS  # the shop grows
    if _is_black_friday_weekend(day):
        season = 3.0
    elif (day.month == 11 and day.day >= 20) or (day.month == 12 and day.day <= 22):
        season = 1.8
    elif day.month in (7, 8):
        season = 0.85
    else:
        season = 1.0
    weekend = 1.15 if day.weekday() >= 5 else 1.0
    return growth * season * weekend


def _is_black_friday_weekend(day: date) -> bool:
    """Black Friday (the day after the fourth Thursday of November) to Sunday."""
    if day.month != 11:
        return False
    first_thursday = 1 + (3 - day.replace(day=1).weekday()) % 7
    return first_thursday + 22 <= day.day <= first_thursday + 24
