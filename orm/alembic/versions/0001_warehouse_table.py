"""The warehouse table, as the catalog's Django migrations leave it.

The starting point of the scratch database: the table that the next
revision changes, with the same columns and named constraints as
catalog_warehouse in the shop (catalog/models.py:Warehouse), so that both
tools change the same table.

Revision ID: 0001_warehouse_table
Revises:
"""

import sqlalchemy as sa
from alembic import op

revision = "0001_warehouse_table"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "catalog_warehouse",
        sa.Column("id", sa.BigInteger, sa.Identity(always=False), primary_key=True),
        sa.Column("code", sa.String(16), nullable=False),
        sa.Column("name", sa.String(120), nullable=False),
        sa.Column("is_default", sa.Boolean, nullable=False),
        sa.UniqueConstraint("code", name="catalog_warehouse_code_uniq"),
        sa.CheckConstraint(
            "code ~ '^[A-Z0-9-]+$'", name="catalog_warehouse_code_format"
        ),
    )
    # At most one default warehouse: a partial unique index.
    op.create_index(
        "catalog_warehouse_one_default",
        "catalog_warehouse",
        ["is_default"],
        unique=True,
        postgresql_where=sa.text("is_default"),
    )


def downgrade() -> None:
    op.drop_table("catalog_warehouse")
