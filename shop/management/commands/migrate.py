"""`migrate`, refusing a database migrated under the old layout.

Before each app owned its row-level security policies and audit triggers,
shop's migrations created them for every app's tables, and the migration
graph had cycles between apps. That history was rewritten once, before any
release: a database migrated under it holds the same objects under other
migration names, and Django would try to create them a second time. It
holds demo data only, so the way forward is to rebuild it.
"""

from django.core.management.base import CommandError
from django.core.management.commands.migrate import Command as DjangoMigrate
from django.db import connections
from django.db.migrations.recorder import MigrationRecorder

# Migrations of the old layout that no longer exist under these names.
OLD_LAYOUT = {
    ("shop", "0003_row_level_security"),
    ("shop", "0004_pgaudit_object_grants"),
    ("orders", "0006_release_stale_job_context"),
}


class Command(DjangoMigrate):
    def handle(self, *args, **options):
        connection = connections[options["database"]]
        recorder = MigrationRecorder(connection)
        if recorder.has_table() and OLD_LAYOUT & recorder.applied_migrations().keys():
            raise CommandError(
                f"The database {connection.settings_dict['NAME']!r} was migrated "
                "under the layout before each app owned its own SQL; its history "
                "cannot be replayed. It holds demo data only: rebuild it with "
                "`make stop && rm -rf var/pg && make run` (or drop and recreate "
                "the database, then `make migrate`)."
            )
        return super().handle(*args, **options)
