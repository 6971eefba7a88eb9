"""python manage.py pitr_drill: restore a backup to a point in time, and prove it.

The steps and why are in shop/pitr.py; `make pitr-drill` runs this. It
works on scratch clusters of its own under var/scratch/ and removes them,
so the dev primary and its backups are never touched.
"""

from django.core.management.base import BaseCommand, CommandError

from shop.pitr import DrillFailed, run_drill
from shop.scratch_cluster import ScratchError


class Command(BaseCommand):
    help = (
        "Point-in-time recovery drill with pgBackRest on a scratch cluster: "
        "back up, place orders, restore to a moment between two batches, "
        "check the orders by id and total."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--before", type=int, default=12, help="checkouts before the target"
        )
        parser.add_argument(
            "--after", type=int, default=6, help="checkouts after the target"
        )
        parser.add_argument(
            "--seed", default="small", help="the scratch shop's seed scale"
        )

    def handle(self, *args, before, after, seed, **options):
        self.stdout.write("point-in-time recovery drill (shop/pitr.py)")
        try:
            run_drill(before=before, after=after, seed=seed, out=self.stdout.write)
        except (DrillFailed, ScratchError) as exc:
            raise CommandError(f"pitr drill FAILED: {exc}") from exc
