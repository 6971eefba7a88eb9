"""python manage.py checkout_recover: release stock held by interrupted checkouts."""

from datetime import timedelta

from django.core.management.base import BaseCommand

from orders.services import checkout_recover
from orders.services.orders import STALE_CHECKOUT_AFTER


class Command(BaseCommand):
    help = "Fail pending checkouts older than --minutes and release their stock."

    def add_arguments(self, parser):
        parser.add_argument(
            "--minutes",
            type=float,
            default=STALE_CHECKOUT_AFTER.total_seconds() / 60,
            help="how old a pending checkout must be (default: %(default)s)",
        )
        parser.add_argument("--batch-size", type=int, default=100)

    def handle(self, *args, minutes, batch_size, **options):
        released = checkout_recover(
            older_than=timedelta(minutes=minutes), batch_size=batch_size
        )
        self.stdout.write(f"released {released} stale checkout(s)")
