"""The project's own labs: the ER diagram (13), connection pools and
pgbouncer (16), schema changes (17), the read replica and the server's
cache (18), security (23),
the WAL and point-in-time recovery, the server's log and pgBadger (24).

One module per lab, named after it; importing this package registers them
all (`manage.py lab` finds it through shop/lab.py's discover()). Labs about
an app's tables live in that app (catalog/labs/, orders/labs/).

Labs that need DDL run as shop_owner (alias `owner`); everything the app
itself would do runs as shop_app (alias `default`). Rows are written inside
transactions that are rolled back; the throw-away table lab_zero_downtime is
dropped in `finally`.
"""

from shop.labs import (
    audit,
    buffers,
    er_diagram,
    injection,
    pgbadger,
    pgbouncer,
    pitr,
    pool,
    replica,
    wal,
    zero_downtime,
)

__all__ = [
    "audit",
    "buffers",
    "er_diagram",
    "injection",
    "pgbadger",
    "pgbouncer",
    "pitr",
    "pool",
    "replica",
    "wal",
    "zero_downtime",
]
