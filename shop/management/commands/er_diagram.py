"""python manage.py er_diagram [--check]: write the ER diagram for chapter 13."""

from django.core.management.base import BaseCommand, CommandError

from shop import erd


class Command(BaseCommand):
    help = "Write docs/snippets/er-diagram.md from the installed models (chapter 13)."

    def add_arguments(self, parser):
        parser.add_argument(
            "--check",
            action="store_true",
            help="write nothing; exit non-zero if the snippet is stale",
        )

    def handle(self, *args, check, **options):
        path = erd.SNIPPET_PATH.relative_to(erd.BASE_DIR)
        if check:
            if not erd.snippet_is_current():
                raise CommandError(
                    f"{path} does not match the models. "
                    "Run `python manage.py er_diagram` and commit the result."
                )
            self.stdout.write(f"{path} is current")
            return
        erd.SNIPPET_PATH.parent.mkdir(parents=True, exist_ok=True)
        erd.SNIPPET_PATH.write_text(erd.render_snippet(), encoding="utf-8")
        self.stdout.write(f"wrote {path}")
