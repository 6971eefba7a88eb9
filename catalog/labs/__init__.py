"""The catalog's labs: constraints (02), normalization (03), selectors (05), ORM (17).

One module per lab, named after it; importing this package registers them
all. _common.py inserts the rows several labs start from (catalog_rows, which
the shop's acid lab uses too).

Every lab works inside one transaction on `default` (the app's role,
shop_app) that it rolls back, so it runs the same on an empty database and
on a seeded one and leaves nothing behind.
"""

from catalog.labs import constraints, orm_vs_sql, selector_sql, update_anomaly
from catalog.labs._common import catalog_rows
from catalog.labs.orm_vs_sql import category_price_summary_orm

__all__ = [
    "catalog_rows",
    "category_price_summary_orm",
    "constraints",
    "orm_vs_sql",
    "selector_sql",
    "update_anomaly",
]
