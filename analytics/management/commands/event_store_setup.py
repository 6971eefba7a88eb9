"""manage.py event_store_setup: the event log's collections, validators, indexes."""

from django.core.management.base import BaseCommand, CommandError

from analytics import event_store


class Command(BaseCommand):
    help = (
        "Create the MongoDB event log's collections with their JSON-schema "
        "validators and indexes (TTL on raw views). Idempotent: run it again "
        "after an upgrade to update validators and add new indexes."
    )

    def handle(self, *args, **options):
        try:
            done = event_store.ensure_collections()
        except event_store.EventStoreUnavailable as exc:
            raise CommandError(str(exc)) from exc
        except Exception as exc:  # pymongo's own: the server refused or is gone
            raise CommandError(f"MongoDB: {exc}") from exc
        for line in done:
            self.stdout.write(line)
