"""Deterministic demo data for the shop, written with COPY (`manage.py seed`).

This package is the machinery; the rows are the apps' own. Each app
declares its phases in its `seeding` module (shop/accounts/seeding/,
catalog/seeding/, orders/seeding/), each with the counts it writes at every
scale, and phases.py finds them the way the `lab` command finds labs.
plan.py combines those counts into a plan, copy.py writes the rows,
determinism.py makes them repeat, runner.py runs the phases, one
transaction each, and tables.py empties or inspects the tables they fill.
"""

from .phases import SCALES, Count, Phase, declared_counts, seed_phase
from .plan import Plan, plan_for
from .runner import DEFAULT_SEED, SeedFailed, SeedResult, seed_database
from .tables import ResetBlocked, tables_with_rows, truncate_seeded_tables

__all__ = [
    "DEFAULT_SEED",
    "SCALES",
    "Count",
    "Phase",
    "Plan",
    "ResetBlocked",
    "SeedFailed",
    "SeedResult",
    "declared_counts",
    "plan_for",
    "seed_database",
    "seed_phase",
    "tables_with_rows",
    "truncate_seeded_tables",
]
