"""The accounts' part of `manage.py seed`: demo logins, customers, addresses.

accounts.py writes them; vocabulary.py holds the names and places they are
made of. shop/seeding/phases.py says how the seed finds this phase.
"""

from shop.accounts.models import Address, Customer, User
from shop.seeding import Count, seed_phase

from .accounts import DEMO_LOGINS, DemoLogin, accounts_row_count, seed_accounts

__all__ = ["DEMO_LOGINS", "DemoLogin", "accounts_phase"]


@seed_phase(
    "accounts",
    order=20,
    models=(User, Customer, Address),
    # Besides the demo logins (accounts.py), which every scale has.
    counts={"customers": Count(small=50, large=50_000)},
    row_count=accounts_row_count,
    provides="customer_ids",
)
def accounts_phase(writer, *, plan, rng):
    return seed_accounts(writer, plan=plan, rng=rng)
