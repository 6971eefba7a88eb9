"""A warehouse's time zone: a nullable column with a default.

The change the chapter puts next to Django's: the same column, which
catalog's AddField(..., db_default="UTC") would add. The default lives in
the database (server_default), so rows inserted by any client get it, and
adding it rewrites no row (PostgreSQL 11 and later store a constant
default in the catalog).

Revision ID: 0002_warehouse_timezone
Revises: 0001_warehouse_table
"""

import sqlalchemy as sa
from alembic import op

revision = "0002_warehouse_timezone"
down_revision = "0001_warehouse_table"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column(
        "catalog_warehouse",
        sa.Column("timezone", sa.String(64), nullable=True, server_default="UTC"),
    )


def downgrade() -> None:
    op.drop_column("catalog_warehouse", "timezone")
