"""Account reads."""

from shop.accounts.models import Customer
from shop.crypto import current_key, execute_with_keys, key_by_id
from shop.sql_files import read_sql

TAX_ID_GET_SQL = "shop/accounts/sql/queries/customer_tax_id_get_v01.sql"


def customer_tax_id_get(*, customer_id: int) -> str | None:
    """Return the customer's tax id in clear, or None if none is recorded.

    Read from the primary: a tax id just set must be seen at once, and the
    replica may lag behind it.
    """
    key_id, key = current_key()
    # Three tries: the row's own key may differ from the current one, and a
    # rotation may move the row to the current key between two of them.
    for _attempt in range(3):
        _, rows = execute_with_keys(
            read_sql(TAX_ID_GET_SQL),
            {"customer_id": customer_id, "key_id": key_id, "key": key},
        )
        if not rows:
            raise Customer.DoesNotExist(f"No customer with id {customer_id}.")
        row_key_id, tax_id = rows[0]
        if row_key_id is None or row_key_id == key_id:
            return tax_id
        key_id, key = row_key_id, key_by_id(row_key_id)
    raise RuntimeError(
        f"Customer {customer_id}'s tax id changed key during every read; try again."
    )
