"""The catalogue rows labs start from, inserted by catalog/sql/labs/catalog_rows.sql.

Every lab that needs a product, its variants, a warehouse or stock, in the
catalog's labs and in other apps' (orders/labs/), inserts them through
`catalog_rows`, so the SQL exists once. Each lab's rows carry names made
from its tag, which is how a lab that commits them finds them again to
delete them.
"""

from __future__ import annotations

from decimal import Decimal
from typing import NamedTuple

from shop.lab import Narrator
from shop.sql_files import read_sql

CATALOG_ROWS_SQL_FILE = "catalog/sql/labs/catalog_rows.sql"
PRICE = Decimal("19.90")


class LabVariant(NamedTuple):
    """One variant the rows made, with its stock row (None when not stocked)."""

    stock_id: int | None
    variant_id: int
    sku: str
    warehouse_id: int
    quantity_on_hand: int | None
    product_id: int
    category_id: int


def catalog_names(tag: str) -> dict:
    """The names a lab's catalogue rows carry: category and product, warehouse, SKUs.

    SKUs are the warehouse code, a dash and the variant's number (LAB-09-1).
    """
    return {"name": f"Lab {tag}", "slug": f"lab-{tag}", "code": f"LAB-{tag.upper()}"}


def catalog_rows_params(tag: str, *, variants: int = 1, on_hand: int | None) -> dict:
    return {
        **catalog_names(tag),
        "price": PRICE,
        "variants": variants,
        "on_hand": on_hand,
    }


def catalog_rows(
    n: Narrator,
    tag: str,
    *,
    variants: int = 1,
    on_hand: int | None,
    using: str = "default",
    cursor=None,
    label: str | None = "setup",
) -> list[LabVariant]:
    """Insert a category, a product with `variants` variants and a warehouse.

    With `on_hand` a number, each variant also gets a stock row holding that
    many units; with None, none (for labs that insert stock themselves).
    Shown and run by the narrator on `using`, or on a psycopg `cursor`.
    """
    rows = n.sql(
        read_sql(CATALOG_ROWS_SQL_FILE),
        catalog_rows_params(tag, variants=variants, on_hand=on_hand),
        using=using,
        cursor=cursor,
        label=label,
    )
    return [LabVariant(*row) for row in rows]
