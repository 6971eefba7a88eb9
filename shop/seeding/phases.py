"""The seed's phases, contributed by the apps that own their tables.

An app declares its phases in its own `seeding` module or package
(catalog/seeding/, orders/seeding/, shop/accounts/seeding/) with
`@seed_phase`, and `discover()` finds them the way the `lab` command finds
labs: Django's autodiscover_modules imports `<app>.seeding` for every
installed app. So this package, at the bottom of the layers, knows no app's
models: it runs what the apps registered, in their declared order.

A phase passes values to later ones by name: the catalogue phase provides
"product_ids", the accounts phase "customer_ids", and the reviews phase
needs both. Reading tables an earlier phase committed needs no declaration,
only a higher `order`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from django.core.exceptions import ImproperlyConfigured
from django.utils.module_loading import autodiscover_modules

from .plan import Plan


@dataclass(frozen=True)
class Phase:
    """One transaction of the seed: what it writes, when, and what it needs."""

    name: str
    # Phases run in ascending order, each after every phase it needs.
    order: int
    # The models whose tables the phase fills: --if-empty looks for rows in
    # them and --reset truncates them.
    models: tuple
    # The rows it will write, for the progress bar; an estimate is fine.
    row_count: Callable[[Plan], int] = field(repr=False)
    write: Callable[..., object] = field(repr=False)
    # Names of values earlier phases provide, passed to `write` as keywords.
    needs: tuple[str, ...] = ()
    # The name under which `write`'s return value reaches later phases.
    provides: str | None = None


REGISTRY: dict[str, Phase] = {}


def seed_phase(
    name: str,
    *,
    order: int,
    models: Sequence,
    row_count: Callable[[Plan], int],
    needs: Sequence[str] = (),
    provides: str | None = None,
):
    """Register the decorated function as the seed phase `name`.

    The function is called as `write(writer, plan=..., rng=..., **needs)`
    inside the phase's transaction, with a CopyWriter and the phase's own
    random generator; what it returns is provided to later phases.
    """

    def register(write):
        if name in REGISTRY:
            raise ValueError(f"seed phase {name!r} is registered twice")
        REGISTRY[name] = Phase(
            name=name,
            order=order,
            models=tuple(models),
            row_count=row_count,
            write=write,
            needs=tuple(needs),
            provides=provides,
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


def seeded_models() -> list:
    """Return the models every phase fills, in the order the phases run."""
    return [model for phase in discover() for model in phase.models]
