"""python manage.py lab [--list | NAME ... | --all]: run the course's live labs."""

from django.core.management.base import BaseCommand, CommandError

from shop import lab as labs


class Command(BaseCommand):
    help = "Run a live lab against the real database (see docs/chapters)."

    def add_arguments(self, parser):
        parser.add_argument("names", nargs="*", help="labs to run, in order")
        parser.add_argument(
            "--list", action="store_true", help="list the labs and exit"
        )
        parser.add_argument("--all", action="store_true", help="run every lab")

    def handle(self, *args, names, list, all, **options):
        registry = labs.discover()
        if list or not (names or all):
            for lab in registry.values():
                self.stdout.write(f"{lab.chapter}  {lab.name:<20} {lab.summary}")
            return
        unknown = [n for n in names if n not in registry]
        if unknown:
            raise CommandError(
                f"unknown lab(s): {', '.join(unknown)}. "
                "Run `python manage.py lab --list`."
            )
        for name in registry if all else names:
            try:
                labs.run(name, out=self.stdout)
            except labs.LabFailed as exc:
                raise CommandError(f"lab {name} failed: {exc}", returncode=1) from exc
