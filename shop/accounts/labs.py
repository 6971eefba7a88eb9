"""The customers labs start from, inserted by shop/accounts/sql/labs/customers.sql.

No lab of the accounts' own lives here (the audit and row-level security
labs are shop's and the orders'); every lab that needs customers, in any
app, inserts them through `lab_customers`, so the SQL exists once.
"""

from __future__ import annotations

from typing import NamedTuple

from shop.lab import Narrator
from shop.sql_files import read_sql

CUSTOMERS_SQL_FILE = "shop/accounts/sql/labs/customers.sql"


class LabCustomer(NamedTuple):
    customer_id: int
    user_id: int
    email: str


def customer_email_prefix(tag: str) -> str:
    """What a lab's customers' e-mail addresses start with; a LIKE finds them all."""
    return f"lab-{tag}-"


def lab_customers_params(tag: str, count: int) -> dict:
    return {"email_prefix": customer_email_prefix(tag), "count": count}


def lab_customers(
    n: Narrator,
    tag: str,
    count: int = 1,
    *,
    using: str = "default",
    cursor=None,
    label: str | None = "setup",
) -> list[LabCustomer]:
    """Insert `count` users and their customers, named after `tag`.

    Shown and run by the narrator on `using`, or on a psycopg `cursor`.
    """
    rows = n.sql(
        read_sql(CUSTOMERS_SQL_FILE),
        lab_customers_params(tag, count),
        using=using,
        cursor=cursor,
        label=label,
    )
    return [LabCustomer(*row) for row in rows]
