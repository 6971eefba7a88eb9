"""manage.py shards setup|teardown: the order archive on two shards (chapter 15)."""

from django.core.management.base import BaseCommand, CommandError

from analytics import shards


class Command(BaseCommand):
    help = (
        "Create (setup) or remove (teardown) the order archive: a table "
        "partitioned by hash of customer_id whose partitions are postgres_fdw "
        "foreign tables on the two shards of `scripts/services.sh shards up`. "
        "Setup is idempotent; teardown also drops the shards' databases."
    )

    def add_arguments(self, parser):
        parser.add_argument("action", choices=["setup", "teardown"])
        parser.add_argument(
            "--database",
            default="owner",
            help="the alias whose database gets the archive (default: owner)",
        )

    def handle(self, *args, action, database, **options):
        run = shards.shards_setup if action == "setup" else shards.shards_teardown
        try:
            done = run(using=database)
        except shards.ShardsUnavailable as exc:
            raise CommandError(str(exc)) from exc
        for line in done:
            self.stdout.write(line)
