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
from shop.seeding import seed_phase

from .catalog import catalog_row_count, seed_catalog
from .reviews import seed_reviews


@seed_phase(
    "catalog",
    order=10,
    models=(Category, Warehouse, Product, ProductVariant, StockLevel),
    row_count=catalog_row_count,
    provides="product_ids",
)
def catalog_phase(writer, *, plan, rng):
    return seed_catalog(writer, plan=plan, rng=rng)


@seed_phase(
    "reviews",
    order=30,
    models=(Review,),
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
