"""python manage.py docs_snapshots [--check] [--labs [NAME ...]]: SQL for the chapters.

The chapters never retype SQL. They include files under docs/snippets/ that
this command writes from the running code: the DDL that `sqlmigrate` prints
for a migration (whole, and regrouped per table), the SQL a selector's
QuerySet sends, the row locks orders/locks.py takes, the ER diagram. Each
app contributes its own in its `docs_snapshots` module (shop/snapshots.py
says how). A test runs `--check`, so a model or selector that changes
without its snapshot fails the suite instead of leaving a chapter that
describes code which no longer exists.

`--labs` also writes lab transcripts (lab-NAME.txt), of every lab or only of
the ones named. They hold LSNs, transaction ids and timings that differ on
every run, so `--check` leaves them alone.
"""

from __future__ import annotations

from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from shop import erd, lab, snapshots

SNIPPETS_DIR = erd.BASE_DIR / "docs" / "snippets"


class Command(BaseCommand):
    help = "Write the SQL and diagrams the docs include (docs/snippets/)."

    def add_arguments(self, parser):
        parser.add_argument(
            "--check",
            action="store_true",
            help="write nothing; exit non-zero if a snapshot is missing or stale",
        )
        parser.add_argument(
            "--labs",
            nargs="*",
            metavar="NAME",
            help="also run the labs (all, or the ones named) and write each "
            "transcript to lab-NAME.txt",
        )

    def handle(self, *args, check, labs, **options):
        found = snapshots.discover()
        expected = {snapshot.filename: snapshot for snapshot in found}
        stale = []
        for filename, snapshot in expected.items():
            path = SNIPPETS_DIR / filename
            text = snapshot.render()
            if path.exists() and path.read_text(encoding="utf-8") == text:
                continue
            if check:
                stale.append(filename)
                continue
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text, encoding="utf-8")
            self.stdout.write(f"wrote {relative(path)}")
        for path in sorted(orphans(expected, snapshots.generated_patterns(found))):
            if check:
                stale.append(f"{path.name} (no longer generated)")
            else:
                path.unlink()
                self.stdout.write(f"removed {relative(path)}")
        if stale:
            raise CommandError(
                f"stale docs snapshots in docs/snippets/: {', '.join(stale)}. "
                "Run `python manage.py docs_snapshots` and commit the result."
            )
        if labs is not None and not check:
            self.write_lab_transcripts(labs)
        self.stdout.write("docs snapshots are current")

    def write_lab_transcripts(self, names):
        registered = lab.discover()
        unknown = [name for name in names if name not in registered]
        if unknown:
            raise CommandError(
                f"unknown lab(s): {', '.join(unknown)}. "
                "Run `python manage.py lab --list`."
            )
        failed = []
        for name in names or registered:
            path = SNIPPETS_DIR / f"lab-{name}.txt"
            try:
                text = lab.transcript(name)
            except lab.LabFailed as exc:
                # Keep the last good transcript; a failed run is not one to show.
                failed.append(f"{name} ({exc})")
                continue
            path.write_text(text, encoding="utf-8")
            self.stdout.write(f"wrote {relative(path)}")
        if failed:
            raise CommandError(
                f"lab(s) failed, transcripts not written: {'; '.join(failed)}. "
                "Run `python manage.py lab NAME` to see why."
            )


def orphans(expected, patterns) -> list[Path]:
    found = {path for pattern in patterns for path in SNIPPETS_DIR.glob(pattern)}
    return [path for path in found if path.name not in expected]


def relative(path: Path) -> str:
    return str(path.relative_to(erd.BASE_DIR))
