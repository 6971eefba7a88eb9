"""The coupons the seeded order history used: a standing offer and campaigns.

Usage limits scale with the plan's order count, so every scale has a coupon
that ran out (Black Friday) as well as unlimited ones.
"""

from dataclasses import dataclass
from datetime import UTC, datetime


@dataclass(frozen=True)
class CouponSpec:
    code: str
    percent_off: int
    valid_from: datetime
    valid_until: datetime
    # Uses allowed per 1,000 planned orders; None: unlimited.
    limit_per_1000_orders: float | None
    # The chance that an order placed while the coupon is valid uses it.
    uptake: float
    is_active: bool = True
    first_order_only: bool = False


def _utc(year: int, month: int, day: int) -> datetime:
    return datetime(year, month, day, tzinfo=UTC)


COUPONS = (
    # Still valid in the running shop, so the demo customer can try it.
    CouponSpec(
        "WELCOME10", 10, _utc(2022, 1, 1), _utc(2030, 1, 1), None, 0.3,
        first_order_only=True,
    ),
    CouponSpec("SPRING-2023", 15, _utc(2023, 3, 20), _utc(2023, 4, 10), 4, 0.15),
    CouponSpec("BLACK-FRIDAY-2023", 25, _utc(2023, 11, 24), _utc(2023, 11, 28), 1, 0.4),
    CouponSpec("HOLIDAY-2023", 20, _utc(2023, 12, 1), _utc(2023, 12, 24), 8, 0.15),
    CouponSpec("SUMMER-2024", 15, _utc(2024, 6, 21), _utc(2024, 7, 21), 6, 0.12),
    # Withdrawn by staff before it expired: inactive, its past uses stand.
    CouponSpec(
        "VIP-30", 30, _utc(2024, 1, 1), _utc(2025, 7, 1), 2, 0.02, is_active=False
    ),
    CouponSpec("BLACK-FRIDAY-2024", 25, _utc(2024, 11, 29), _utc(2024, 12, 3), 1, 0.4),
    CouponSpec("HOLIDAY-2024", 20, _utc(2024, 12, 1), _utc(2024, 12, 24), None, 0.15),
)  # fmt: skip


def usage_limit(spec: CouponSpec, orders: int) -> int | None:
    if spec.limit_per_1000_orders is None:
        return None
    return max(1, round(orders * spec.limit_per_1000_orders / 1000))
