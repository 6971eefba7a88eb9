"""python manage.py top_queries [--limit N] [--order total|mean|calls].

The statements that cost this database most, from pg_stat_statements, read
as the monitoring role (shop/observability/selectors.py). Staff can ask the
same of the API: GET /api/v1/ops/top-queries/.
"""

from django.core.management.base import BaseCommand, CommandError

from shop.errors import ApplicationError
from shop.observability.selectors import MAX_LIMIT, ORDERS, top_statements_list

# Characters of each statement shown; the API gives it whole.
QUERY_WIDTH = 100


class Command(BaseCommand):
    help = (
        "The top statements of pg_stat_statements in this database, by total "
        "time (default), mean time or calls."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--limit", type=int, default=20, help=f"1 to {MAX_LIMIT} (default 20)"
        )
        parser.add_argument("--order", choices=ORDERS, default="total")

    def handle(self, *args, limit, order, **options):
        try:
            rows = top_statements_list(limit=limit, order=order)
        except ApplicationError as exc:
            raise CommandError(exc.detail) from exc
        header = f"{'calls':>10} {'total ms':>12} {'mean ms':>10} {'rows':>10} "
        header += f"{'hit %':>6}  query"
        self.stdout.write(header)
        for row in rows:
            blocks = row.shared_blks_hit + row.shared_blks_read
            hit = f"{100 * row.shared_blks_hit / blocks:.1f}" if blocks else "-"
            query = " ".join(row.query.split())[:QUERY_WIDTH]
            self.stdout.write(
                f"{row.calls:>10} {row.total_exec_ms:>12.1f} {row.mean_exec_ms:>10.2f} "
                f"{row.rows:>10} {hit:>6}  {query}"
            )
        if not rows:
            self.stdout.write("(no statements recorded since the last reset)")
