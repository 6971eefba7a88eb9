"""The orders' part of `manage.py seed`: two years of order history.

orders.py writes the orders with their lines, payments, coupons and
redemptions; order_draws.py says what it draws them from (the catalogue and
customers earlier phases committed); coupons.py which coupons ran when.
shop/seeding/phases.py says how the seed finds this phase.
"""

from orders import payments
from orders.models import Coupon, CouponRedemption, Order, OrderLine, Payment
from shop.seeding import Count, Plan, seed_phase

from .orders import orders_row_count, seed_orders


def check_orders_plan(plan: Plan) -> None:
    if plan.orders and not plan.customers:
        raise ValueError("orders need customers to place them: raise --customers")


# After the catalogue and accounts phases: the history is drawn from the
# variants, stock rows and addresses they committed.
@seed_phase(
    "orders",
    order=40,
    models=(Coupon, Order, OrderLine, Payment, CouponRedemption),
    # Past orders, spread over the two years before BASE_TIME.
    counts={"orders": Count(small=300, large=200_000)},
    check=check_orders_plan,
    row_count=orders_row_count,
    needs=("customer_ids",),
    # The gateway's record of the seeded history describes only the orders
    # --reset truncates: without forgetting it, a reseed would find the
    # refunds of orders cancelled before the reset still on file, and the
    # cancel of the same order, seeded again, would "refund" nothing.
    on_reset=payments.history_forget,
)
def orders_phase(writer, *, plan, rng, customer_ids):
    seed_orders(writer, plan=plan, rng=rng, customer_ids=customer_ids)
