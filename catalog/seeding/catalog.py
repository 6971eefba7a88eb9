"""The catalogue phase: category tree, warehouses, products, variants, stock."""

import random
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta

from django.utils.text import slugify

from catalog.models import Category, Product, ProductVariant, StockLevel, Warehouse
from shop.seeding.copy import CopyWriter
from shop.seeding.determinism import moment_between, money
from shop.seeding.plan import Plan

from .vocabulary import ADJECTIVES, AUDIENCES, CATEGORY_TREE, FEATURES, Leaf

# (code, name, is_default). Exactly one default, MAIN, where every variant
# is stocked; the others hold a share of variants a second time.
WAREHOUSES = (
    ("MAIN", "Main warehouse", True),
    ("NORTH", "Northern depot", False),
    ("SOUTH", "Southern depot", False),
)
SOLD_OUT_SHARE = 0.10
FULLY_RESERVED_SHARE = 0.05
# Share of variants that are stocked in a second warehouse as well.
DUAL_STOCKED_SHARE = 0.3
# Every option list in vocabulary.py has at least this many entries, so a
# product never repeats an option (and so never repeats a SKU).
MAX_VARIANTS_PER_PRODUCT = 5


@dataclass(frozen=True)
class _Product:
    """What variants need to know about the product they belong to."""

    id: int
    number: int
    leaf: Leaf
    base_cents: int


def check_catalog_plan(plan: Plan) -> None:
    """Refuse a catalogue this phase cannot draw: SKUs must stay unique."""
    if plan.products < 1:
        raise ValueError("a plan needs at least one product: raise --products")
    if not plan.products <= plan.variants <= plan.products * MAX_VARIANTS_PER_PRODUCT:
        raise ValueError(
            f"variants must be between products ({plan.products}) and "
            f"{MAX_VARIANTS_PER_PRODUCT} x products "
            f"({plan.products * MAX_VARIANTS_PER_PRODUCT}); got {plan.variants}"
        )


def catalog_row_count(plan: Plan) -> int:
    return (
        category_count()
        + len(WAREHOUSES)
        + plan.products
        + plan.variants
        # Stock: a MAIN row for every variant, a second row for some.
        + plan.variants
        + _dual_stocked_count(plan)
    )


def seed_catalog(writer: CopyWriter, *, plan: Plan, rng: random.Random) -> list[int]:
    """Write the catalogue and return the new products' ids."""
    leaf_ids = _write_categories(writer)
    warehouse_ids = _write_warehouses(writer)
    products, product_rows = _product_rows(
        writer, plan=plan, rng=rng, leaf_ids=leaf_ids
    )
    # Every row is drawn before any is written, in the order the draws have
    # always had (products, variants, stock): a product's in_stock flag
    # depends on its stock, which is written last.
    variant_ids = writer.reserve_ids(ProductVariant, plan.variants)
    counts = _variants_per_product(rng, plan)
    variant_rows = list(_variant_rows(rng, products, counts, iter(variant_ids)))
    dual = _dual_stocked(rng, plan)
    stock_rows = list(_stock_rows(rng, variant_ids, dual, warehouse_ids))
    in_stock = _products_in_stock(variant_rows, stock_rows)
    writer.copy(
        Product,
        PRODUCT_COLUMNS,
        (row + (row[0] in in_stock,) for row in product_rows),
    )
    writer.copy(
        ProductVariant,
        ("id", "product", "sku", "name", "price", "is_active"),
        variant_rows,
    )
    writer.copy(
        StockLevel,
        ("variant", "warehouse", "quantity_on_hand", "reserved", "updated_at"),
        stock_rows,
    )
    return [product.id for product in products]


def _products_in_stock(variant_rows, stock_rows) -> set[int]:
    """The products with an active variant that has a unit available.

    What catalog_product.in_stock must say (product_in_stock_v01.sql): the
    trigger on the stock's COPY computes the same, and so rewrites nothing.
    """
    available = {
        variant for variant, _, on_hand, reserved, _ in stock_rows if on_hand > reserved
    }
    return {
        product
        for variant, product, _, _, _, active in variant_rows
        if active and variant in available
    }


def _write_categories(writer: CopyWriter) -> list[tuple[int, Leaf]]:
    rows, leaves = [], []
    ids = iter(writer.reserve_ids(Category, category_count()))
    for root_name, middles in CATEGORY_TREE.items():
        root_id = next(ids)
        rows.append((root_id, root_name, slugify(root_name), None))
        for middle_name, leaf_specs in middles.items():
            middle_id = next(ids)
            rows.append((middle_id, middle_name, slugify(middle_name), root_id))
            for leaf in leaf_specs:
                leaf_id = next(ids)
                rows.append((leaf_id, leaf.name, slugify(leaf.name), middle_id))
                leaves.append((leaf_id, leaf))
    writer.copy(Category, ("id", "name", "slug", "parent"), rows)
    return leaves


def category_count() -> int:
    return sum(
        1 + len(middles) + sum(len(leaves) for leaves in middles.values())
        for middles in CATEGORY_TREE.values()
    )


def _write_warehouses(writer: CopyWriter) -> list[int]:
    ids = writer.reserve_ids(Warehouse, len(WAREHOUSES))
    rows = [(id_, *warehouse) for id_, warehouse in zip(ids, WAREHOUSES, strict=True)]
    writer.copy(Warehouse, ("id", "code", "name", "is_default"), rows)
    return ids


PRODUCT_COLUMNS = ("id", "category", "name", "slug", "description", "is_active") + (
    "created_at",
    "updated_at",
    "min_price",
    "in_stock",
)


def _product_rows(writer, *, plan, rng, leaf_ids) -> tuple[list[_Product], list]:
    products, rows = [], []
    ids = writer.reserve_ids(Product, plan.products)
    for number, product_id in enumerate(ids, start=1):
        leaf_id, leaf = rng.choice(leaf_ids)
        adjective = rng.choice(ADJECTIVES)
        name = f"{adjective} {rng.choice(leaf.qualifiers)} {rng.choice(leaf.nouns)}"
        created_at = moment_between(rng, 1095, 200)
        description = _description(rng, name, adjective, leaf)
        updated_at = created_at + timedelta(days=rng.randint(0, 180))
        base_cents = _price_cents(rng, leaf)
        rows.append(
            (
                product_id,
                leaf_id,
                name,
                # The number makes the slug unique however often a name repeats.
                f"{slugify(name)}-{number}",
                description,
                True,
                created_at,
                updated_at,
                # The lowest active price: the first variant's, which carries
                # no surcharge (_variant_rows). The triggers on the variants'
                # COPY compute the same and so rewrite no product; were this
                # ever wrong, they would correct it, at the price of an
                # UPDATE of every product.
                money(base_cents),
            )
        )
        products.append(_Product(product_id, number, leaf, base_cents))
    return products, rows


def _description(rng, name, adjective, leaf) -> str:
    first, second = rng.sample(FEATURES, 2)
    return (
        f"{name}, from the {leaf.name.lower()} range, in a {adjective.lower()} "
        f"style. {first} {second} A good fit for {rng.choice(AUDIENCES)}."
    )


def _price_cents(rng: random.Random, leaf: Leaf) -> int:
    low, high = leaf.price_range
    # Shop prices end in .99, .95, .49 or .00, not in random cents.
    return rng.randint(low, high) * 100 - rng.choice((1, 1, 1, 5, 51, 0))


def _variants_per_product(rng: random.Random, plan: Plan) -> list[int]:
    """Split plan.variants over the products: exactly that many, 1 to 5 each."""
    base, extra = divmod(plan.variants, plan.products)
    counts = [base] * plan.products
    for index in rng.sample(range(plan.products), extra):
        counts[index] += 1
    # Moving one variant between random pairs keeps the total and spreads
    # the counts, so some products have one variant and some have five.
    for _ in range(plan.products):
        giver, taker = rng.randrange(plan.products), rng.randrange(plan.products)
        if counts[giver] > 1 and counts[taker] < MAX_VARIANTS_PER_PRODUCT:
            counts[giver] -= 1
            counts[taker] += 1
    return counts


def _variant_rows(rng, products, counts, ids) -> Iterator[tuple]:
    for product, count in zip(products, counts, strict=True):
        options = sorted(rng.sample(range(len(product.leaf.options)), count))
        for position, option in enumerate(options):
            label, code = product.leaf.options[option]
            surcharge = 0 if position == 0 else rng.choice((0, 0, 500, 1000))
            yield (
                next(ids),
                product.id,
                f"{product.leaf.sku_prefix}{product.number:06d}-{code}",
                label,
                money(product.base_cents + surcharge),
                True,
            )


def _dual_stocked_count(plan: Plan) -> int:
    return round(plan.variants * DUAL_STOCKED_SHARE)


def _dual_stocked(rng: random.Random, plan: Plan) -> set[int]:
    return set(rng.sample(range(plan.variants), _dual_stocked_count(plan)))


def _stock_rows(rng, variant_ids, dual, warehouses) -> Iterator[tuple]:
    # No id column: nothing seeded points at a stock row, so the identity
    # default numbers them.
    main, others = warehouses[0], warehouses[1:]
    for index, variant_id in enumerate(variant_ids):
        draw = rng.random()
        unavailable = draw < SOLD_OUT_SHARE + FULLY_RESERVED_SHARE
        if draw < SOLD_OUT_SHARE:
            on_hand = reserved = 0
        elif unavailable:
            # Units on the shelf, all promised to carts: 0 available, too.
            on_hand = reserved = rng.randint(1, 3)
        else:
            on_hand = rng.randint(1, 250)
            reserved = rng.randint(0, min(5, on_hand)) if rng.random() < 0.2 else 0
        yield (variant_id, main, on_hand, reserved, moment_between(rng, 30, 0))
        if index in dual:
            extra = 0 if unavailable else rng.randint(0, 100)
            yield (variant_id, rng.choice(others), extra, 0, moment_between(rng, 30, 0))
