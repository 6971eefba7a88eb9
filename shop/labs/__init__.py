"""The project's labs: ACID (01), DDL (04), the ER diagram (13), schema changes (17),
security (23).

One module per lab, named after it; importing this package registers them
all (`manage.py lab` finds it through shop/lab.py's discover()). _common.py
creates and drops the throw-away tables.

Labs that need DDL run as shop_owner (alias `owner`); everything the app
itself would do runs as shop_app (alias `default`). Rows are written inside
transactions that are rolled back; the two throw-away tables
(lab_acid_durability, lab_zero_downtime) are dropped in `finally`.
"""

from shop.labs import (
    acid,
    audit,
    er_diagram,
    injection,
    sqlmigrate,
    transactional_ddl,
    zero_downtime,
)

__all__ = [
    "acid",
    "audit",
    "er_diagram",
    "injection",
    "sqlmigrate",
    "transactional_ddl",
    "zero_downtime",
]
