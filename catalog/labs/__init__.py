"""The catalog's labs: ACID (01), constraints (02), normalization (03),
transactional DDL and the DDL of a migration (04), selectors (05), plans
(06), indexes (14), ORM (17), the cache and the denormalized price (18).

One module per lab, named after it; importing this package registers them
all. rows.py inserts the catalogue rows labs start from
(catalog/sql/labs/catalog_rows.sql), for the orders' labs too; plans.py
inserts the 20,000 products the labs on plans and indexes need
(catalog/sql/labs/catalog_bulk.sql) and runs and reads their EXPLAINs.

Every lab works inside transactions on `default` (the app's role,
shop_app) that it rolls back, so it runs the same on an empty database and
on a seeded one and leaves nothing behind. The exceptions: acid's
durability step commits to a throw-away table it drops; transactional-ddl,
explain, list-indexes, index-write-cost and search-postings work as
shop_owner (DDL, ANALYZE)
in a transaction they roll back; index-kinds works as shop_owner in a
session of its own, on temporary tables (VACUUM cannot run in a
transaction); sqlmigrate only reads (as shop_owner, the alias that
migrates); min-price works as shop_app and then as shop_owner (it disables
a trigger) in transactions it rolls back, and commits one inactive product
for its two-session step, deleted in `finally`; cache commits its catalogue
rows (NOTIFY is delivered only on COMMIT) and deletes them in `finally`.
"""

from catalog.labs import (
    acid,
    alembic_lab,
    cache,
    constraints,
    explain,
    index_kinds,
    index_write_cost,
    list_indexes,
    min_price,
    orm_vs_sql,
    search_postings,
    selector_sql,
    sqlmigrate,
    transactional_ddl,
    update_anomaly,
)
from catalog.labs.orm_vs_sql import category_price_summary_orm

__all__ = [
    "acid",
    "alembic_lab",
    "cache",
    "category_price_summary_orm",
    "constraints",
    "explain",
    "index_kinds",
    "index_write_cost",
    "list_indexes",
    "min_price",
    "orm_vs_sql",
    "search_postings",
    "selector_sql",
    "sqlmigrate",
    "transactional_ddl",
    "update_anomaly",
]
