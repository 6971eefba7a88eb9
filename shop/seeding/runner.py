"""Seed the database phase by phase: each phase is one transaction and one progress bar.

The phases are the apps' own (phases.py says how they are found). A phase
that fails rolls back whole, so no table is ever left half-written; phases
before it stay committed, and the error says to rerun with --reset.
"""

import sys
import time
from contextlib import contextmanager
from dataclasses import dataclass, field

import psycopg
from django.db import DatabaseError, connections, transaction
from psycopg import errors
from tqdm import tqdm

from .copy import CopyWriter
from .determinism import phase_random
from .phases import discover
from .plan import Plan

DEFAULT_SEED = 42


class SeedFailed(Exception):
    """A phase failed and was rolled back."""


@dataclass(frozen=True)
class SeedResult:
    rows: dict[str, int]  # table -> rows written
    seconds: float
    # Phase -> seconds, commit included: deferred foreign keys are checked then.
    phase_seconds: dict[str, float]


@dataclass
class _Tally:
    rows: dict[str, int] = field(default_factory=dict)
    phase_seconds: dict[str, float] = field(default_factory=dict)


def seed_database(*, plan: Plan, seed: int = DEFAULT_SEED, using: str = "loader"):
    """Write the plan's rows as `using`: the same seed, the same rows.

    `loader` is shop_loader, the one role that bypasses row-level security:
    COPY FROM refuses tables with policies for every other role (chapter
    22), and the seed writes every customer's rows in one go. So it may
    reach nothing but the tables the phases fill: each app grants it its
    own (catalog/sql/grants/loader_v01.sql, for one).
    """
    started = time.monotonic()
    tally = _Tally()
    provided: dict[str, object] = {}
    for phase in discover():
        with _phase(phase.name, phase.row_count(plan), using, tally) as writer:
            result = phase.write(
                writer,
                plan=plan,
                rng=phase_random(seed, phase.name),
                **{need: provided[need] for need in phase.needs},
            )
        if phase.provides is not None:
            provided[phase.provides] = result
    _analyze(tally.rows)
    return SeedResult(
        rows=tally.rows,
        seconds=time.monotonic() - started,
        phase_seconds=tally.phase_seconds,
    )


def _analyze(rows: dict[str, int]) -> None:
    """Refresh the planner's statistics for the tables just filled.

    Without it the first queries after a large seed may plan for empty
    tables (autovacuum analyses them later, or mid-load) and pick nested
    loops over hundreds of thousands of rows. ANALYZE needs the table's
    owner, hence the `owner` alias.
    """
    with connections["owner"].cursor() as cursor:
        for table in sorted(t for t, n in rows.items() if n):
            cursor.execute(f"ANALYZE {connections['owner'].ops.quote_name(table)}")


@contextmanager
def _phase(name: str, total: int, using: str, tally: _Tally):
    # disable=None: a bar on a terminal, silence in logs and test runs.
    progress = tqdm(
        total=total,
        desc=name,
        unit=" rows",
        unit_scale=True,
        file=sys.stderr,
        disable=None,
    )
    started = time.monotonic()
    try:
        with (
            progress,
            transaction.atomic(using=using),
            connections[using].cursor() as cursor,
        ):
            # A bulk load is no request: no statement timeout (the app's 30 s,
            # scripts/sql/roles.sql, would cut a large phase's COMMIT short).
            cursor.execute("SELECT set_config('statement_timeout', '0', true)")
            writer = CopyWriter(cursor, progress)
            yield writer
    # COPY's own errors come straight from psycopg (Django passes copy()
    # through unwrapped); errors at COMMIT, deferred foreign keys among them,
    # come wrapped in Django's.
    except (DatabaseError, psycopg.Error) as exc:
        cause = exc if isinstance(exc, psycopg.Error) else exc.__cause__
        if isinstance(cause, errors.InsufficientPrivilege):
            advice = (
                "shop_loader may reach only what the apps grant it: grant the "
                "table to shop_loader in a migration of the app that owns the "
                "phase (catalog/sql/grants/loader_v01.sql is an example), "
                "migrate, and run the command again with --reset."
            )
        else:
            advice = "Earlier phases are committed: run the command again with --reset."
        raise SeedFailed(
            f"seeding failed in the {name} phase, which was rolled back: "
            f"{str(exc).strip()}. {advice}"
        ) from exc
    tally.rows.update(writer.counts)
    tally.phase_seconds[name] = time.monotonic() - started
