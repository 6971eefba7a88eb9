"""How many rows one seed writes: the counts every phase declared, for one scale.

A plan is a value, not a set of flags scattered through the code. This
module knows no count by name: each phase declares its own, per scale
(`counts={"products": Count(small=200, large=100_000)}`, in its app's
seeding package), with a `check` that refuses what it cannot write, and
plan_for() combines them. The command builds a plan from `--scale`, plus
the hidden per-count options the phases contribute (`--products`), which
let a test push a mid-size plan through exactly the path `large` takes.
"""

from collections.abc import Mapping
from types import MappingProxyType

from .phases import SCALES, declared_counts, discover


class Plan:
    """Every phase's counts for one seed, read as attributes: `plan.products`."""

    __slots__ = ("_counts",)

    def __init__(self, counts: Mapping[str, int]):
        self._counts = MappingProxyType(dict(counts))

    @property
    def counts(self) -> Mapping[str, int]:
        return self._counts

    def __getattr__(self, name: str) -> int:
        # Reached only for names that are not real attributes: the counts.
        if name.startswith("_"):
            raise AttributeError(name)
        try:
            return self._counts[name]
        except KeyError:
            raise AttributeError(
                f"no seed phase declares a count named {name!r}; the plan has "
                f"{', '.join(self._counts) or 'none'}"
            ) from None

    def __eq__(self, other) -> bool:
        if not isinstance(other, Plan):
            return NotImplemented
        return dict(self._counts) == dict(other._counts)

    def __repr__(self) -> str:
        counts = ", ".join(f"{name}={value}" for name, value in self._counts.items())
        return f"Plan({counts})"


def plan_for(scale: str, **overrides: int | None) -> Plan:
    """Return the plan for `scale`, with any count given in `overrides` replaced.

    Every phase's `check` then sees the whole plan, so a plan no phase can
    write is refused before anything touches the database.
    """
    if scale not in SCALES:
        raise ValueError(f"unknown scale {scale!r}: choose one of {', '.join(SCALES)}")
    declared = declared_counts()
    given = {name: value for name, value in overrides.items() if value is not None}
    unknown = sorted(set(given) - set(declared))
    if unknown:
        raise ValueError(
            f"no seed phase declares {', '.join(unknown)}: the counts are "
            f"{', '.join(declared)}"
        )
    counts = {
        name: given.get(name, getattr(count, scale)) for name, count in declared.items()
    }
    negative = [f"{name} ({value})" for name, value in counts.items() if value < 0]
    if negative:
        raise ValueError(f"counts cannot be negative: {', '.join(negative)}")
    plan = Plan(counts)
    for phase in discover():
        if phase.check is not None:
            phase.check(plan)
    return plan
