"""Catalog writes: one function per use case; transactions live here."""

import re
from dataclasses import dataclass
from decimal import Decimal

from django.db import IntegrityError, transaction
from django.db.models import Max
from django.utils import timezone
from django.utils.text import slugify

from catalog.cache import Change, catalog_changed
from catalog.models import Category, Product, ProductVariant, StockLevel, Warehouse
from shop.db_context import set_locals, staff_transaction
from shop.errors import Conflict, InvalidRequest, NotFound
from shop.outbox import outbox_kick

SLUG_ATTEMPTS = 5


@dataclass(frozen=True)
class VariantSpec:
    sku: str
    price: Decimal
    stock: int
    name: str = ""


def _constraint_name(error: IntegrityError) -> str | None:
    diag = getattr(error.__cause__, "diag", None)
    return getattr(diag, "constraint_name", None)


def _unique_slug(name: str) -> str:
    base = slugify(name)[:200].strip("-_") or "product"
    # Only this name's own family (base, base-2, base-3, ...), not every slug
    # that happens to start with the same letters.
    family = rf"^{re.escape(base)}(-[0-9]+)?$"
    taken = set(
        Product.objects.filter(slug__regex=family).values_list("slug", flat=True)
    )
    if base not in taken:
        return base
    n = 2
    while f"{base}-{n}" in taken:
        n += 1
    return f"{base}-{n}"


def _default_warehouse() -> Warehouse:
    warehouse = Warehouse.objects.filter(is_default=True).first()
    if warehouse is None:
        raise Conflict(
            "There is no default warehouse to put the stock in. "
            "Create one in the admin or run `python manage.py seed`.",
            code="no_default_warehouse",
        )
    return warehouse


def product_create(
    *, name: str, category_slug: str, description: str = "", variants: list[VariantSpec]
) -> Product:
    """Create a product with its variants and their stock in the default warehouse."""
    skus = [v.sku for v in variants]
    duplicates = sorted({s for s in skus if skus.count(s) > 1})
    if duplicates:
        raise InvalidRequest(
            f"SKUs repeated in the request: {', '.join(duplicates)}.",
            code="duplicate_sku",
        )
    category = Category.objects.filter(slug=category_slug).first()
    if category is None:
        raise InvalidRequest(
            f"No category has the slug {category_slug!r}.", code="unknown_category"
        )
    taken = sorted(
        ProductVariant.objects.filter(sku__in=skus).values_list("sku", flat=True)
    )
    if taken:
        raise Conflict(
            f"SKUs already exist: {', '.join(taken)}.", code="sku_taken", skus=taken
        )
    warehouse = _default_warehouse()
    # The pre-checks above give good messages; the unique constraints are what
    # really decide under concurrency, so their violations are mapped here too.
    for _ in range(SLUG_ATTEMPTS):
        try:
            with transaction.atomic():
                product = _insert_product(
                    name, category, description, variants, warehouse
                )
            # A new product joins the lists, and its slug, which may have
            # been a cached 404, now answers.
            catalog_changed(Change.of([product.pk], lists=True))
            return product
        except IntegrityError as exc:
            constraint = _constraint_name(exc)
            if constraint == "catalog_product_slug_uniq":
                continue  # another request took the slug first: pick the next one
            if constraint == "catalog_variant_sku_uniq":
                raise Conflict(
                    "A SKU in the request was just created by another request.",
                    code="sku_taken",
                ) from exc
            raise
    raise Conflict(
        "Could not find a free slug for this name; try again.", code="slug_conflict"
    )


def _insert_product(name, category, description, variants, warehouse) -> Product:
    product = Product.objects.create(
        name=name, slug=_unique_slug(name), category=category, description=description
    )
    created = ProductVariant.objects.bulk_create(
        [
            ProductVariant(product=product, sku=v.sku, name=v.name, price=v.price)
            for v in variants
        ]
    )
    StockLevel.objects.bulk_create(
        [
            StockLevel(
                variant=variant, warehouse=warehouse, quantity_on_hand=spec.stock
            )
            for variant, spec in zip(created, variants, strict=True)
        ]
    )
    return product


def stock_set(
    *, sku: str, quantity_on_hand: int, warehouse_code: str | None = None
) -> Warehouse:
    """Set the units on hand of a SKU in one warehouse (the default one if not given).

    A conditional UPDATE: it only succeeds when the new count still covers the
    units reserved by pending orders, so no read-then-write race can slip a
    count below `reserved` (the CHECK constraint would stop it anyway).
    """
    variant = ProductVariant.objects.filter(sku=sku).first()
    if variant is None:
        raise NotFound(f"No variant has the SKU {sku!r}.")
    if warehouse_code is None:
        warehouse = _default_warehouse()
    else:
        warehouse = Warehouse.objects.filter(code=warehouse_code).first()
        if warehouse is None:
            raise InvalidRequest(
                f"No warehouse has the code {warehouse_code!r}.",
                code="unknown_warehouse",
            )
    with staff_transaction():
        set_locals({"app.stock_reason": "staff_adjustment"})
        outbox_kick()  # its stock.changed, shipped after COMMIT
        StockLevel.objects.bulk_create(
            [StockLevel(variant=variant, warehouse=warehouse)], ignore_conflicts=True
        )
        # --8<-- [start:conditional_update]
        updated = StockLevel.objects.filter(
            variant=variant, warehouse=warehouse, reserved__lte=quantity_on_hand
        ).update(quantity_on_hand=quantity_on_hand, updated_at=timezone.now())
        # --8<-- [end:conditional_update]
    if updated:
        # The product's pages show the new count at once. The lists too: the
        # count may have crossed zero (the in_stock filter), which only the
        # old count would tell; the trigger, which has it, is exact.
        catalog_changed(Change.of([variant.product_id], lists=True))
    if updated == 0:
        reserved = StockLevel.objects.filter(
            variant=variant, warehouse=warehouse
        ).aggregate(r=Max("reserved"))["r"]
        raise Conflict(
            f"{reserved} unit(s) of {sku} are reserved by pending orders; "
            f"quantity_on_hand cannot go below that.",
            code="stock_below_reserved",
            reserved=reserved,
        )
    return warehouse


def product_update(
    *,
    slug: str,
    name: str | None = None,
    description: str | None = None,
    category_slug: str | None = None,
    is_active: bool | None = None,
) -> Product:
    """Change a product's name, description, category or whether it is on sale.

    Only the fields given are written, in one UPDATE: never min_price, which
    the database keeps, nor the slug, which links and carts point at.
    """
    changes = {
        field: value
        for field, value in (
            ("name", name),
            ("description", description),
            ("is_active", is_active),
        )
        if value is not None
    }
    if category_slug is not None:
        category = Category.objects.filter(slug=category_slug).first()
        if category is None:
            raise InvalidRequest(
                f"No category has the slug {category_slug!r}.", code="unknown_category"
            )
        changes["category"] = category
    if not changes:
        raise InvalidRequest(
            "Nothing to change: send at least one of name, description, "
            "category and is_active.",
            code="nothing_to_change",
        )
    with staff_transaction():
        updated = Product.objects.filter(slug=slug).update(**changes)
    if updated == 0:
        raise NotFound(f"No product has the slug {slug!r}.")
    product = Product.objects.get(slug=slug)
    # Each of these fields also places the product in the lists (search,
    # ordering, category, whether it is listed at all).
    catalog_changed(Change.of([product.pk], lists=True))
    return product


def variant_update(
    *, sku: str, price: Decimal | None = None, is_active: bool | None = None
) -> ProductVariant:
    """Change a variant's price or whether it is on sale.

    The product's min_price follows in the same transaction: the variants'
    triggers recompute it (catalog/sql/triggers/product_min_price_v01.sql).
    """
    changes = {
        field: value
        for field, value in (("price", price), ("is_active", is_active))
        if value is not None
    }
    if not changes:
        raise InvalidRequest(
            "Nothing to change: send price, is_active or both.",
            code="nothing_to_change",
        )
    with staff_transaction():
        updated = ProductVariant.objects.filter(sku=sku).update(**changes)
    if updated == 0:
        raise NotFound(f"No variant has the SKU {sku!r}.")
    variant = ProductVariant.objects.select_related("product").get(sku=sku)
    # A price or an on/off switch may move min_price, which orders and
    # filters the lists.
    catalog_changed(Change.of([variant.product_id], lists=True))
    return variant
