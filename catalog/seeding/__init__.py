"""The catalog's part of `manage.py seed`: the catalogue, then its reviews.

catalog.py writes the category tree, warehouses, products, variants and
stock; reviews.py the reviews, which need customers from the accounts phase
(shop/accounts/seeding/). vocabulary.py holds the words both are made of.
shop/seeding/phases.py says how the seed finds these phases.
"""

from catalog.models import (
    Category,
    Product,
    ProductVariant,
    Review,
    StockLevel,
    Warehouse,
)
from shop.seeding import Count, seed_phase

from .catalog import catalog_row_count, check_catalog_plan, seed_catalog
from .reviews import check_reviews_plan, seed_reviews


@seed_phase(
    "catalog",
    order=10,
    models=(Category, Warehouse, Product, ProductVariant, StockLevel),
    counts={
        "products": Count(small=200, large=100_000),
        # Between one and MAX_VARIANTS_PER_PRODUCT per product.
        "variants": Count(small=600, large=300_000),
    },
    check=check_catalog_plan,
    row_count=catalog_row_count,
    provides="product_ids",
)
def catalog_phase(writer, *, plan, rng):
    return seed_catalog(writer, plan=plan, rng=rng)


@seed_phase(
    "reviews",
    order=30,
    models=(Review,),
    counts={"reviews": Count(small=150, large=200_000)},
    check=check_reviews_plan,
    row_count=lambda plan: plan.reviews,
    needs=("product_ids", "customer_ids"),
)
def reviews_phase(writer, *, plan, rng, product_ids, customer_ids):
    seed_reviews(
        writer,
        count=plan.reviews,
        rng=rng,
        product_ids=product_ids,
        customer_ids=customer_ids,
    )
