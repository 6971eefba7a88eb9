"""The seed's phases, contributed by the apps that own their tables.

An app declares its phases in its own `seeding` module or package
(catalog/seeding/, orders/seeding/, shop/accounts/seeding/) with
`@seed_phase`, and `discover()` finds them the way the `lab` command finds
labs: Django's autodiscover_modules imports `<app>.seeding` for every
installed app. So this package, at the bottom of the layers, knows no app's
models and no app's numbers: it runs what the apps registered, in their
declared order, with the counts they declared (plan.py combines them).

A phase passes values to later ones by name: the catalogue phase provides
"product_ids", the accounts phase "customer_ids", and the reviews phase
needs both. Reading tables an earlier phase committed needs no declaration,
only a higher `order`; reading another phase's count (the reviews phase
reads `plan.customers`) needs none either.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, fields
from typing import TYPE_CHECKING

from django.core.exceptions import ImproperlyConfigured
from django.utils.module_loading import autodiscover_modules

if TYPE_CHECKING:
    # Annotations only: plan.py imports this module to combine the counts.
    from .plan import Plan


@dataclass(frozen=True)
class Count:
    """One number a phase sizes its rows by, at each scale of `manage.py seed`.

    A scale is a field, so a phase that leaves one out fails as it is
    declared, not when someone seeds at that scale.
    """

    small: int
    large: int


SCALES = tuple(scale.name for scale in fields(Count))
# A count becomes a hidden option of the command (--products), so its name
# must read as one.
COUNT_NAME = re.compile(r"^[a-z][a-z0-9_]*$")


@dataclass(frozen=True)
class Phase:
    """One transaction of the seed: what it writes, when, and what it needs."""

    name: str
    # Phases run in ascending order, each after every phase it needs.
    order: int
    # The models whose tables the phase fills: --if-empty looks for rows in
    # them, --reset truncates them, and the tests hold shop_loader's grants
    # to exactly these tables.
    models: tuple
    # The rows it will write, for the progress bar; an estimate is fine.
    row_count: Callable[[Plan], int] = field(repr=False)
    write: Callable[..., object] = field(repr=False)
    # The numbers this phase owns, by name: plan.py puts them in every plan,
    # and the seed command offers each as a hidden option.
    counts: Mapping[str, Count] = field(default_factory=dict)
    # Refuses a plan this phase cannot write, with a ValueError that says
    # which count to change; it may read other phases' counts.
    check: Callable[[Plan], None] | None = field(default=None, repr=False)
    # Names of values earlier phases provide, passed to `write` as keywords.
    needs: tuple[str, ...] = ()
    # The name under which `write`'s return value reaches later phases.
    provides: str | None = None
    # Called after --reset has emptied the phases' tables, to forget what
    # `write` left outside them that describes only their rows (the orders
    # phase: the fake payment gateway's record of the seeded history).
    on_reset: Callable[[], object] | None = field(default=None, repr=False)


REGISTRY: dict[str, Phase] = {}


def seed_phase(
    name: str,
    *,
    order: int,
    models: Sequence,
    row_count: Callable[[Plan], int],
    counts: Mapping[str, Count] | None = None,
    check: Callable[[Plan], None] | None = None,
    needs: Sequence[str] = (),
    provides: str | None = None,
    on_reset: Callable[[], object] | None = None,
):
    """Register the decorated function as the seed phase `name`.

    The function is called as `write(writer, plan=..., rng=..., **needs)`
    inside the phase's transaction, with a CopyWriter and the phase's own
    random generator; what it returns is provided to later phases.
    `on_reset()` is called once --reset has emptied the tables.
    """
    counts = dict(counts or {})
    for count_name, count in counts.items():
        if not COUNT_NAME.match(count_name) or not isinstance(count, Count):
            raise ValueError(
                f"seed phase {name!r}: declare each count as a lower-case name "
                f"and a Count(small=..., large=...); got {count_name!r}: {count!r}"
            )
        owner = next(
            (
                phase.name
                for phase in REGISTRY.values()
                if count_name in phase.counts and phase.name != name
            ),
            None,
        )
        if owner is not None:
            raise ValueError(
                f"seed phase {name!r} declares the count {count_name!r}, which "
                f"phase {owner!r} already declares: read it from the plan instead"
            )

    def register(write):
        if name in REGISTRY:
            raise ValueError(f"seed phase {name!r} is registered twice")
        REGISTRY[name] = Phase(
            name=name,
            order=order,
            models=tuple(models),
            row_count=row_count,
            write=write,
            counts=counts,
            check=check,
            needs=tuple(needs),
            provides=provides,
            on_reset=on_reset,
        )
        return write

    return register


def discover() -> list[Phase]:
    """Return every app's phases in the order they run, checking what they need."""
    autodiscover_modules("seeding")
    phases = sorted(REGISTRY.values(), key=lambda phase: (phase.order, phase.name))
    provided: set[str] = set()
    for phase in phases:
        missing = [need for need in phase.needs if need not in provided]
        if missing:
            raise ImproperlyConfigured(
                f"seed phase {phase.name!r} needs {', '.join(missing)}, which no "
                "earlier phase provides: give it a higher order than the phase "
                "that provides it, or register that phase"
            )
        if phase.provides is not None:
            provided.add(phase.provides)
    return phases


def declared_counts() -> dict[str, Count]:
    """Return every phase's counts by name, in the order the phases run."""
    return {name: count for phase in discover() for name, count in phase.counts.items()}


def seeded_models() -> list:
    """Return the models every phase fills, in the order the phases run."""
    return [model for phase in discover() for model in phase.models]
