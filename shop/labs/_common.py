"""Throw-away tables, for the labs whose work must COMMIT (acid, zero-downtime).

They are created and dropped as shop_owner; the app's role cannot create
tables (the transactional-ddl lab shows it).
"""

from shop.lab import LabFailed, Narrator


def _create_throwaway(n: Narrator, table: str, columns: str) -> None:
    """Create a lab's table as shop_owner, refusing to touch one that exists."""
    rows = n.sql("SELECT to_regclass(%s) AS existing", [table], using="owner")
    if rows[0][0] is not None:
        raise LabFailed(
            f"table {table} already exists: another run of this lab is in "
            f"progress, or one was killed. If none is running: DROP TABLE {table};"
        )
    # The name and columns are constants of the calling lab, never user input.
    n.sql(f"CREATE TABLE {table} {columns}", using="owner", label="as shop_owner")


def _drop_throwaway(n: Narrator, table: str) -> None:
    n.sql(f"DROP TABLE IF EXISTS {table}", using="owner", label="clean up")
