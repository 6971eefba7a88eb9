"""Deterministic demo data for the shop, written with COPY (`manage.py seed`).

plan.py says how many rows, vocabulary.py and coupons.py what they are made
of, one module per phase (catalog, accounts, reviews, orders) writes them
through copy.py, and runner.py runs the phases, one transaction each.
"""

from .accounts import DEMO_LOGINS, DemoLogin
from .plan import SCALES, Plan, plan_for
from .runner import DEFAULT_SEED, SeedFailed, SeedResult, seed_database
from .tables import ResetBlocked, tables_with_rows, truncate_seeded_tables

__all__ = [
    "DEFAULT_SEED",
    "DEMO_LOGINS",
    "SCALES",
    "DemoLogin",
    "Plan",
    "ResetBlocked",
    "SeedFailed",
    "SeedResult",
    "plan_for",
    "seed_database",
    "tables_with_rows",
    "truncate_seeded_tables",
]
