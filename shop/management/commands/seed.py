"""python manage.py seed --scale small|large [--if-empty] [--reset] [--seed N]."""

import argparse

from django.core.management.base import BaseCommand, CommandError

from shop import seeding
from shop.accounts.seeding import DEMO_LOGINS


def _scales_help(counts) -> str:
    """Say what each scale writes, from the counts the phases declared."""
    return "; ".join(
        f"{scale}: "
        + ", ".join(
            f"{getattr(count, scale):,} {name}" for name, count in counts.items()
        )
        for scale in seeding.SCALES
    )


class Command(BaseCommand):
    help = (
        "Fill the database with deterministic demo data, each app's seed "
        "phases in turn (shop/seeding/phases.py), plus demo logins."
    )

    def add_arguments(self, parser):
        counts = seeding.declared_counts()
        parser.add_argument(
            "--scale",
            choices=seeding.SCALES,
            default="small",
            help=f"{_scales_help(counts)} (default: small)",
        )
        when_not_empty = parser.add_mutually_exclusive_group()
        when_not_empty.add_argument(
            "--if-empty",
            action="store_true",
            help="do nothing if the seeded tables already hold data",
        )
        when_not_empty.add_argument(
            "--reset",
            action="store_true",
            help="first empty the seeded tables and everything that references "
            "them (carts, tokens): all users, not only seeded ones",
        )
        parser.add_argument(
            "--seed",
            type=int,
            default=seeding.DEFAULT_SEED,
            help=f"random seed; the same seed gives the same rows "
            f"(default: {seeding.DEFAULT_SEED})",
        )
        # Hidden, one per count a phase declares (--products): tests push a
        # mid-size plan through the path `large` takes.
        for name in counts:
            parser.add_argument(
                f"--{name.replace('_', '-')}",
                dest=name,
                type=int,
                help=argparse.SUPPRESS,
            )

    def handle(self, *args, scale, if_empty, reset, seed, **options):
        counts = {name: options[name] for name in seeding.declared_counts()}
        try:
            plan = seeding.plan_for(scale, **counts)
        except ValueError as exc:
            raise CommandError(str(exc)) from exc
        occupied = seeding.tables_with_rows()
        if occupied and if_empty:
            self.stdout.write(
                f"The database already has data ({', '.join(occupied)}): "
                "nothing seeded."
            )
            return
        if occupied and not reset:
            raise CommandError(
                f"The database already has data ({', '.join(occupied)}). "
                "Pass --reset to wipe it and seed again, or --if-empty to keep it."
            )
        try:
            if reset:
                seeding.truncate_seeded_tables()
            result = seeding.seed_database(plan=plan, seed=seed)
        except (seeding.ResetBlocked, seeding.SeedFailed) as exc:
            raise CommandError(str(exc)) from exc
        self._report(scale, seed, result)

    def _report(self, scale, seed, result):
        self.stdout.write(
            self.style.SUCCESS(
                f"Seeded scale {scale} with seed {seed} in {result.seconds:.1f}s:"
            )
        )
        for table, count in result.rows.items():
            self.stdout.write(f"  {table:<26} {count:>9,}")
        phases = ", ".join(
            f"{phase} {seconds:.1f}s" for phase, seconds in result.phase_seconds.items()
        )
        self.stdout.write(f"Phases: {phases}")
        self.stdout.write("Demo logins (local demo data only):")
        for login in DEMO_LOGINS:
            self.stdout.write(f"  {login.role:<9} {login.email} / {login.password}")
        self.stdout.write(
            "Seeded customers (@example.com) all use the demo customer password."
        )
