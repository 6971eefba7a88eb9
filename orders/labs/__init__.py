"""The orders labs: the stock ledger trigger and a procedure (09), savepoints
(10), lost updates and isolation levels (11), deadlocks and SKIP LOCKED (12),
partitioning the stock ledger (15), the product list and the stock lock in
SQLAlchemy (16), row-level security (22).

One module per lab, named after it; importing this package registers them
all. _common.py holds what several labs share: the rows they work on (made
by catalog/labs/rows.py and shop/accounts/labs.py, from their apps' .sql
files), their cleanup, the extra sessions, and waiting for a lock.
strategies.py is teaching code the labs, tests and docs race against each
other: four ways to reserve stock, one of them deliberately wrong.

Labs about one session work inside a transaction they roll back. Labs about
two sessions need rows that both sessions can see, so they commit a few rows
named after the lab (`lab-11-iso...`, `LAB-11-ISO...`) and delete them in
`finally`; a killed run's leftovers are deleted when the lab starts again.
Every session gets a short lock_timeout: a lab that goes wrong fails in
seconds instead of hanging.
"""

from orders.labs import (
    deadlock,
    isolation,
    ledger_trigger,
    lost_update,
    partitioning,
    rls,
    savepoint,
    skip_locked,
    sqlalchemy_lab,
)

__all__ = [
    "deadlock",
    "isolation",
    "ledger_trigger",
    "lost_update",
    "partitioning",
    "rls",
    "savepoint",
    "skip_locked",
    "sqlalchemy_lab",
]
