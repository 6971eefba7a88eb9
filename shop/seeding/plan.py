"""How many rows each scale writes.

A plan is a value, not a set of flags scattered through the code: the
command builds one from `--scale` (plus the hidden per-count overrides that
let a test push a mid-size plan through exactly the path `large` takes).
"""

from dataclasses import dataclass, replace

# Every option list in vocabulary.py has at least this many entries, so a
# product never repeats an option (and so never repeats a SKU).
MAX_VARIANTS_PER_PRODUCT = 5


@dataclass(frozen=True)
class Plan:
    products: int
    variants: int
    customers: int
    reviews: int
    # Past orders, spread over the two years before BASE_TIME.
    orders: int
    # Share of variants that are stocked in a second warehouse as well.
    second_warehouse_share: float = 0.3

    def __post_init__(self):
        if self.products < 1:
            raise ValueError("a plan needs at least one product")
        if (
            not self.products
            <= self.variants
            <= (self.products * MAX_VARIANTS_PER_PRODUCT)
        ):
            raise ValueError(
                f"variants must be between products ({self.products}) and "
                f"{MAX_VARIANTS_PER_PRODUCT} x products "
                f"({self.products * MAX_VARIANTS_PER_PRODUCT}); got {self.variants}"
            )
        if min(self.customers, self.reviews, self.orders) < 0:
            raise ValueError("customers, reviews and orders cannot be negative")
        if self.orders and not self.customers:
            raise ValueError("orders need customers to place them: raise --customers")
        # Reviews are unique per customer and product; a cap at half the
        # possible pairs keeps drawing them without repeats quick.
        if self.reviews > self.customers * self.products // 2:
            raise ValueError(
                f"{self.reviews} reviews need more customers x products than "
                f"{self.customers} x {self.products}: lower --reviews"
            )


SCALES = {
    "small": Plan(products=200, variants=600, customers=50, reviews=150, orders=300),
    "large": Plan(
        products=100_000,
        variants=300_000,
        customers=50_000,
        reviews=200_000,
        orders=200_000,
    ),
}


def plan_for(scale: str, **overrides: int | None) -> Plan:
    """Return the plan for `scale`, with any count given in `overrides` replaced."""
    try:
        plan = SCALES[scale]
    except KeyError:
        raise ValueError(
            f"unknown scale {scale!r}: choose one of {', '.join(SCALES)}"
        ) from None
    given = {name: value for name, value in overrides.items() if value is not None}
    return replace(plan, **given) if given else plan
