"""The catalog's labs: ACID (01), constraints (02), normalization (03),
transactional DDL and the DDL of a migration (04), selectors (05), ORM (17).

One module per lab, named after it; importing this package registers them
all. rows.py inserts the catalogue rows labs start from
(catalog/sql/labs/catalog_rows.sql), for the orders' labs too.

Every lab works inside transactions on `default` (the app's role,
shop_app) that it rolls back, so it runs the same on an empty database and
on a seeded one and leaves nothing behind. Three exceptions: acid's
durability step commits to a throw-away table it drops, transactional-ddl
creates its table as shop_owner in a transaction it rolls back, and
sqlmigrate only reads (as shop_owner, the alias that migrates).
"""

from catalog.labs import (
    acid,
    constraints,
    orm_vs_sql,
    selector_sql,
    sqlmigrate,
    transactional_ddl,
    update_anomaly,
)
from catalog.labs.orm_vs_sql import category_price_summary_orm

__all__ = [
    "acid",
    "category_price_summary_orm",
    "constraints",
    "orm_vs_sql",
    "selector_sql",
    "sqlmigrate",
    "transactional_ddl",
    "update_anomaly",
]
