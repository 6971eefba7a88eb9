"""python manage.py cache_listen: keep the catalog cache told of every write."""

import signal

from django.core.management.base import BaseCommand, CommandError

from catalog.cache import store
from catalog.cache.listener import CHANNEL, Listener


class Command(BaseCommand):
    help = (
        f"LISTEN on {CHANNEL} and retire the catalog cache's entries that each "
        "committed write changed, including writes made in SQL (checkout, "
        "recovery, psql). `scripts/services.sh workers` (make run) starts it; "
        "SIGTERM or Ctrl-C stops it."
    )

    def handle(self, *args, **options):
        if not store.on_redis():
            raise CommandError(
                "The catalog cache is off: Django's cache is not Redis (REDIS_URL "
                "is empty), so there is nothing to keep fresh. Set REDIS_URL."
            )
        listener = Listener()

        def stop(signum, frame):
            listener.stop.set()

        signal.signal(signal.SIGTERM, stop)
        signal.signal(signal.SIGINT, stop)
        self.stdout.write(f"listening on {CHANNEL}; SIGTERM or Ctrl-C stops")
        listener.run()
        self.stdout.write(f"stopped after {listener.applied} change(s)")
