"""manage.py outbox_relay: ship the outbox's pending events now, without Celery."""

from django.core.management.base import BaseCommand

from analytics.relay import relay_pending
from shop.outbox import outbox_backlog


class Command(BaseCommand):
    help = (
        "Ship pending outbox events to MongoDB, as the Celery task does: for "
        "a shop running without a broker, or to drain a backlog by hand."
    )

    def add_arguments(self, parser):
        parser.add_argument("--max-batches", type=int, default=None)

    def handle(self, *args, max_batches=None, **options):
        report = relay_pending(max_batches=max_batches)
        backlog = outbox_backlog()
        self.stdout.write(
            f"shipped {report.shipped} events in {report.batches} batches "
            f"({report.new_documents} new in MongoDB); {backlog.pending} pending"
        )
        if report.error:
            self.stderr.write(f"stopped: {report.error}")
