"""Lab `pitr` (24): a short point-in-time recovery drill.

The same drill as `make pitr-drill` (shop/pitr.py), with fewer orders: a
scratch cluster of its own is backed up with pgBackRest, takes orders
before and after a target time, loses them all to a TRUNCATE, and is
restored to the target in a new cluster, whose orders are then compared
by id and total. Both clusters are removed at the end, and the dev
primary is never touched. It takes about twenty seconds, most of them
the scratch shop's schema and seed.
"""

from __future__ import annotations

import shutil

from shop.lab import LabFailed, Narrator, lab
from shop.pitr import DrillFailed, run_drill
from shop.scratch_cluster import ScratchError


@lab(
    "pitr",
    chapter="24",
    summary="Restore a pgBackRest backup to a moment between two batches of orders",
)
def pitr(n: Narrator) -> None:
    if shutil.which("pgbackrest") is None:
        raise LabFailed("pgbackrest is not installed (apt-get install pgbackrest)")
    n.step("Back up, take orders, pick a target, make a mistake, restore to the target")
    try:
        report = run_drill(before=4, after=3, out=n.say)
    except (DrillFailed, ScratchError) as exc:
        raise LabFailed(str(exc)) from exc
    n.expect(
        report.compared and not report.problems,
        "the restored cluster holds exactly the orders committed before the "
        "target, by id and total, and none placed after it",
    )
