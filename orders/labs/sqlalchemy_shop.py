"""A slice of the shop in SQLAlchemy 2.0: the product list and the stock lock.

The lab `sqlalchemy` (chapter 16) runs these next to the Django code they
mirror, on the same tables, through an engine with its own pool:

    product_list_statement   catalog/selectors.py:product_list, no filter
    stock_levels_lock        orders/locks.py:stock_levels_lock (its .sql file)
    stock_reserve            a conditional UPDATE: reserve only what is there
    set_context              what shop/db_context.py:staff_transaction sets

The mapped classes declare only the columns these statements use; Django's
migrations own the tables, so nothing here creates or alters one
(tests/shop/test_orm_labs.py checks each column against the Django model).
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

from sqlalchemy import (
    BigInteger,
    DateTime,
    Engine,
    ForeignKey,
    Integer,
    Numeric,
    Select,
    String,
    Text,
    any_,
    bindparam,
    create_engine,
    func,
    select,
    update,
)
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column

from shop.db_context import DEFAULT_LOCK_TIMEOUT, DEFAULT_STATEMENT_TIMEOUT
from shop.labs._sqlalchemy import database_url

# The name the engine's sessions carry in pg_stat_activity, so that the lab
# (and anyone watching) can tell its connections from Django's.
APPLICATION_NAME = "shop-lab-sqlalchemy"
# The settings staff_transaction() sets, transaction-local (shop/db_context.py):
# who acts, and how long a lock or a statement may wait.
STAFF_CONTEXT = {
    "app.customer_id": "",
    "app.is_staff": "on",
    "app.job": "",
    "lock_timeout": DEFAULT_LOCK_TIMEOUT,
    "statement_timeout": DEFAULT_STATEMENT_TIMEOUT,
}


class Base(DeclarativeBase):
    # The shop's keys are bigint identities and its times carry a time zone.
    type_annotation_map = {int: BigInteger, datetime: DateTime(timezone=True)}


class Category(Base):
    __tablename__ = "catalog_category"

    id: Mapped[int] = mapped_column(primary_key=True)
    slug: Mapped[str] = mapped_column(String(140))


class Product(Base):
    __tablename__ = "catalog_product"

    id: Mapped[int] = mapped_column(primary_key=True)
    category_id: Mapped[int] = mapped_column(ForeignKey("catalog_category.id"))
    name: Mapped[str] = mapped_column(String(200))
    slug: Mapped[str] = mapped_column(String(220))
    description: Mapped[str] = mapped_column(Text)
    is_active: Mapped[bool]
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]
    # Kept by triggers on the variants (catalog/models.py:Product.min_price).
    min_price: Mapped[Decimal | None] = mapped_column(Numeric(12, 2))


class ProductVariant(Base):
    __tablename__ = "catalog_product_variant"

    id: Mapped[int] = mapped_column(primary_key=True)
    product_id: Mapped[int] = mapped_column(ForeignKey("catalog_product.id"))
    sku: Mapped[str] = mapped_column(String(64))
    price: Mapped[Decimal] = mapped_column(Numeric(12, 2))
    is_active: Mapped[bool]


class Warehouse(Base):
    __tablename__ = "catalog_warehouse"

    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(String(16))
    is_default: Mapped[bool]


class StockLevel(Base):
    __tablename__ = "catalog_stock_level"

    id: Mapped[int] = mapped_column(primary_key=True)
    variant_id: Mapped[int] = mapped_column(ForeignKey("catalog_product_variant.id"))
    warehouse_id: Mapped[int] = mapped_column(ForeignKey("catalog_warehouse.id"))
    quantity_on_hand: Mapped[int] = mapped_column(Integer)
    reserved: Mapped[int] = mapped_column(Integer)


def engine_for(
    alias: str = "default",
    *,
    pool_size: int = 2,
    max_overflow: int = 1,
    pool_timeout: float = 0.5,
    pool_pre_ping: bool = True,
) -> Engine:
    """An engine with its own QueuePool, as `alias`'s role on `alias`'s database.

    The URL comes from Django's alias (shop/labs/_sqlalchemy.py), so under
    pytest the engine reaches the test database. The pool is small and its
    timeout short on purpose: the lab exhausts it and wants the refusal
    within a second.
    """
    return create_engine(
        database_url(alias),
        pool_size=pool_size,
        max_overflow=max_overflow,
        pool_timeout=pool_timeout,
        pool_pre_ping=pool_pre_ping,
        connect_args={"application_name": APPLICATION_NAME},
    )


# --8<-- [start:product_list]
def product_list_statement(*, limit: int) -> Select:
    """The first page of listed products, newest first: product_list()[:limit].

    The same shape as the Django queryset: the category's slug and the units
    available are correlated subqueries in the select list, so they run for
    the page's rows only, after ORDER BY and LIMIT.
    """
    category_slug = (
        select(Category.slug)
        .where(Category.id == Product.category_id)
        .scalar_subquery()
    )
    available = (
        select(func.sum(StockLevel.quantity_on_hand - StockLevel.reserved))
        .join(ProductVariant, StockLevel.variant_id == ProductVariant.id)
        .where(ProductVariant.is_active, ProductVariant.product_id == Product.id)
        .group_by(ProductVariant.product_id)
        .scalar_subquery()
    )
    return (
        select(
            Product,
            category_slug.label("category_slug"),
            func.coalesce(available, 0).label("available"),
        )
        # Listed: on sale, with an active variant (catalog/models.py:LISTED).
        .where(Product.is_active, Product.min_price.is_not(None))
        .order_by(Product.created_at.desc(), Product.id.desc())
        .limit(limit)
    )


# --8<-- [end:product_list]


def product_list(session: Session, *, limit: int) -> list[tuple]:
    """(id, category slug, min_price, available) of each product on the page."""
    rows = session.execute(product_list_statement(limit=limit))
    return [
        (product.id, category_slug, product.min_price, available)
        for product, category_slug, available in rows
    ]


def set_context(session: Session, settings: dict[str, str]) -> None:
    """Set transaction-local settings in one statement of constant text.

    <the settings> of shop/db_context.py: set_config() over the rows of two
    parallel arrays. is_local true: they end with the transaction, so the
    connection goes back to the pool without them.
    """
    setting = (
        func.unnest(
            bindparam("setting_names", list(settings), type_=ARRAY(Text)),
            bindparam("setting_values", list(settings.values()), type_=ARRAY(Text)),
        )
        .table_valued("name", "value")
        .render_derived(name="setting")
    )
    session.execute(
        select(func.count(func.set_config(setting.c.name, setting.c.value, True)))
    )


# --8<-- [start:stock_lock]
def stock_levels_lock_statement(variant_ids: list[int]) -> Select:
    """Lock the variants' stock rows in the shop's order: variant, then warehouse.

    orders/sql/queries/stock_levels_lock_v01.sql in SQLAlchemy: `= ANY` of
    one array parameter, so the statement's text (and SQLAlchemy's
    compiled-statement cache) is the same for any number of variants; FOR
    UPDATE OF the stock rows only, not the warehouse joined for its flag.
    """
    ids = bindparam("variant_ids", variant_ids, type_=ARRAY(BigInteger))
    return (
        select(
            StockLevel.id,
            StockLevel.variant_id,
            StockLevel.warehouse_id,
            (StockLevel.quantity_on_hand - StockLevel.reserved).label("available"),
            Warehouse.is_default.label("warehouse_is_default"),
        )
        .join(Warehouse, Warehouse.id == StockLevel.warehouse_id)
        .where(StockLevel.variant_id == any_(ids))
        .order_by(StockLevel.variant_id, StockLevel.warehouse_id)
        .with_for_update(of=StockLevel)
    )


# --8<-- [end:stock_lock]


def stock_levels_lock(session: Session, *, variant_ids: list[int]) -> list[tuple]:
    return [
        tuple(row) for row in session.execute(stock_levels_lock_statement(variant_ids))
    ]


# --8<-- [start:stock_reserve]
def stock_reserve(session: Session, *, stock_id: int, quantity: int) -> bool:
    """Reserve `quantity` units of one stock row if they are there; say if it did.

    One conditional UPDATE, never read-add-save: the WHERE clause re-checks
    availability on the row's newest version, and the row count says
    whether it held. synchronize_session=False: no object of this row is
    loaded in the session, so there is nothing to bring up to date.
    """
    result = session.execute(
        update(StockLevel)
        .where(
            StockLevel.id == stock_id,
            StockLevel.quantity_on_hand - StockLevel.reserved >= quantity,
        )
        .values(reserved=StockLevel.reserved + quantity)
        .execution_options(synchronize_session=False)
    )
    return result.rowcount == 1


# --8<-- [end:stock_reserve]
