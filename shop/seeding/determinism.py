"""Randomness and time that repeat exactly: same seed, same rows.

Each phase draws from its own generator, derived from the seed and the
phase's name, so changing how many customers a plan has does not reshuffle
the catalogue. String seeds are hashed with SHA-512 by `random.Random`,
which, unlike `hash()`, does not change between interpreter runs.
"""

import random
from datetime import UTC, datetime, timedelta
from decimal import Decimal

# Timestamps count back from a fixed moment instead of now(), or two runs a
# second apart would already differ.
BASE_TIME = datetime(2025, 1, 1, tzinfo=UTC)


def phase_random(seed: int, phase: str) -> random.Random:
    return random.Random(f"{seed}/{phase}")


def moment_between(rng: random.Random, days_ago_from: int, days_ago_to: int):
    """Return a whole-minute moment between two ages (in days) before BASE_TIME."""
    minutes = rng.randint(days_ago_to * 24 * 60, days_ago_from * 24 * 60)
    return BASE_TIME - timedelta(minutes=minutes)


def money(cents: int) -> Decimal:
    # Integer cents, then scaled: exact, and always two decimal places.
    return Decimal(cents).scaleb(-2)
