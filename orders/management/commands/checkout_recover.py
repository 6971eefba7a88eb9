"""python manage.py checkout_recover: settle checkouts interrupted between phases."""

from datetime import timedelta

from django.core.management.base import BaseCommand, CommandError

from orders.services import checkout_recover
from orders.services.orders import (
    CAPTURED_UNSETTLED_AFTER,
    RELEASE_BATCH,
    STALE_CHECKOUT_AFTER,
)


class Command(BaseCommand):
    help = (
        "Ask the payment gateway about checkouts interrupted between their "
        "phases, then finish those whose charge was captured and release those "
        "older than --minutes whose charge was not; make the refunds still owed. "
        "Celery beat runs the same every 5 minutes."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--minutes",
            type=float,
            default=STALE_CHECKOUT_AFTER.total_seconds() / 60,
            help="how old a pending checkout must be to be released "
            "(default: %(default)s)",
        )
        parser.add_argument(
            "--captured-minutes",
            type=float,
            default=CAPTURED_UNSETTLED_AFTER.total_seconds() / 60,
            help="how old a checkout whose charge was captured must be to be "
            "finished here; 0 after a crash, when no request is still "
            "settling it (default: %(default)s)",
        )
        parser.add_argument(
            "--batch-size",
            type=int,
            default=RELEASE_BATCH,
            help="orders the release procedure takes per transaction "
            "(default: %(default)s)",
        )

    def handle(self, *args, minutes, captured_minutes, batch_size, **options):
        report = checkout_recover(
            older_than=timedelta(minutes=minutes),
            captured_after=timedelta(minutes=captured_minutes),
            batch_size=batch_size,
        )
        self.stdout.write(
            f"finished or released {report.settled} interrupted checkout(s) "
            f"({report.finished} finished, {report.released} released); "
            f"{report.asked} gateway lookup(s), {report.refunded} refund(s)"
        )
        if report.failures:
            # Everything else was done; the next run retries what failed.
            raise CommandError(
                "some of the recovery failed (see the log):\n  "
                + "\n  ".join(report.failures)
            )
