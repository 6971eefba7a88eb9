"""Seed the database phase by phase: each phase is one transaction and one progress bar.

A phase that fails rolls back whole, so no table is ever left half-written;
phases before it stay committed, and the error says to rerun with --reset.
"""

import sys
import time
from contextlib import contextmanager
from dataclasses import dataclass

from django.db import DatabaseError, connections, transaction
from tqdm import tqdm

from .accounts import accounts_row_count, seed_accounts
from .catalog import catalog_row_count, seed_catalog
from .copy import CopyWriter
from .determinism import phase_random
from .plan import Plan
from .reviews import seed_reviews

DEFAULT_SEED = 42


class SeedFailed(Exception):
    """A phase failed and was rolled back."""


@dataclass(frozen=True)
class SeedResult:
    rows: dict[str, int]  # table -> rows written
    seconds: float


def seed_database(*, plan: Plan, seed: int = DEFAULT_SEED, using: str = "default"):
    """Write the plan's rows as `using` (shop_app): the same seed, the same rows."""
    started = time.monotonic()
    rows: dict[str, int] = {}
    with _phase("catalog", catalog_row_count(plan), using, rows) as writer:
        product_ids = seed_catalog(writer, plan=plan, rng=phase_random(seed, "catalog"))
    with _phase("accounts", accounts_row_count(plan), using, rows) as writer:
        customer_ids = seed_accounts(
            writer, plan=plan, rng=phase_random(seed, "accounts")
        )
    with _phase("reviews", plan.reviews, using, rows) as writer:
        seed_reviews(
            writer,
            count=plan.reviews,
            rng=phase_random(seed, "reviews"),
            product_ids=product_ids,
            customer_ids=customer_ids,
        )
    return SeedResult(rows=rows, seconds=time.monotonic() - started)


@contextmanager
def _phase(name: str, total: int, using: str, rows: dict[str, int]):
    # disable=None: a bar on a terminal, silence in logs and test runs.
    progress = tqdm(
        total=total,
        desc=name,
        unit=" rows",
        unit_scale=True,
        file=sys.stderr,
        disable=None,
    )
    try:
        with (
            progress,
            transaction.atomic(using=using),
            connections[using].cursor() as cursor,
        ):
            writer = CopyWriter(cursor, progress)
            yield writer
    except DatabaseError as exc:
        raise SeedFailed(
            f"seeding failed in the {name} phase, which was rolled back: "
            f"{str(exc).strip()}. Earlier phases are committed: run the command "
            "again with --reset."
        ) from exc
    rows.update(writer.counts)
