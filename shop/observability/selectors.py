"""The top statements of pg_stat_statements, read as the monitoring role.

shop_monitor (the `monitor` alias, MONITOR_DATABASE_URL) is a member of
pg_read_all_stats and holds no table: it sees every role's statement text
and no row of the shop. The app's own role would see only its own
statements' text, and granting it pg_read_all_stats would hand every
request the statistics views of the whole cluster.

The read runs on a connection of its own, opened with the alias's settings
and closed after it, like /healthz's probe: the alias has no pool to keep
(an operator's look now and then), and the connection is one of the
servers' reserved ones (shop/settings/base.py: DATABASE_RESERVED_CONNECTIONS).
"""

from dataclasses import dataclass

import psycopg
from django.db import connections

from shop.errors import InvalidRequest, ServiceUnavailable
from shop.sql_files import read_sql

MONITOR = "monitor"
ORDERS = ("total", "mean", "calls")
MAX_LIMIT = 100
# Seconds to connect, and for the statement: a look at the statistics that
# takes longer is not worth the wait.
CONNECT_TIMEOUT = 2
STATEMENT_TIMEOUT = "5s"


@dataclass(frozen=True)
class TopStatement:
    queryid: int
    role: str | None
    calls: int
    total_exec_ms: float
    mean_exec_ms: float
    rows: int
    shared_blks_hit: int
    shared_blks_read: int
    query: str


def top_statements_list(*, limit: int = 20, order: str = "total") -> list[TopStatement]:
    """This database's statements that cost most, by `order`, at most `limit`."""
    if order not in ORDERS:
        raise InvalidRequest(f"order must be one of {', '.join(ORDERS)}.")
    if not 1 <= limit <= MAX_LIMIT:
        raise InvalidRequest(f"limit must be between 1 and {MAX_LIMIT}.")
    params = connections[MONITOR].get_connection_params()
    params["connect_timeout"] = CONNECT_TIMEOUT
    try:
        with psycopg.connect(**params) as connection:
            connection.read_only = True
            connection.execute(
                "SELECT set_config('statement_timeout', %s, true)", [STATEMENT_TIMEOUT]
            )
            rows = connection.execute(
                read_sql("shop/sql/queries/top_statements_v01.sql"),
                {"order": order, "limit": limit},
            ).fetchall()
    except (psycopg.errors.UndefinedTable, psycopg.errors.UndefinedFunction) as exc:
        raise ServiceUnavailable(
            "pg_stat_statements is not installed in this database: run "
            "scripts/sql/database.sql in it as the superuser "
            "(scripts/services.sh up does).",
            code="pg_stat_statements_unavailable",
        ) from exc
    except psycopg.errors.ObjectNotInPrerequisiteState as exc:
        raise ServiceUnavailable(
            "pg_stat_statements is not loaded: add it to the primary's "
            "shared_preload_libraries and restart it.",
            code="pg_stat_statements_unavailable",
        ) from exc
    except psycopg.OperationalError as exc:
        raise ServiceUnavailable(
            "The primary does not answer the monitoring role (MONITOR_DATABASE_URL, "
            f"role shop_monitor): {_first_line(exc)}",
            code="database_unavailable",
        ) from exc
    return [TopStatement(*row) for row in rows]


def _first_line(exc) -> str:
    return (str(exc).strip().splitlines() or [repr(exc)])[0]
