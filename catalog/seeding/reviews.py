"""The reviews phase: ratings that lean positive, on products that lean popular."""

import random
from collections.abc import Iterator, Sequence

from catalog.models import Review
from shop.seeding.copy import CopyWriter
from shop.seeding.determinism import moment_between
from shop.seeding.plan import Plan

from .vocabulary import REVIEW_BODIES, REVIEW_TITLES

RATINGS = (1, 2, 3, 4, 5)
# Roughly how shop ratings fall: mostly fours and fives, a tail of ones.
RATING_WEIGHTS = (5, 7, 15, 33, 40)


def check_reviews_plan(plan: Plan) -> None:
    # Reviews are unique per customer and product; a cap at half the
    # possible pairs keeps drawing them without repeats quick.
    if plan.reviews > plan.customers * plan.products // 2:
        raise ValueError(
            f"{plan.reviews} reviews need more customers x products than "
            f"{plan.customers} x {plan.products}: lower --reviews"
        )


def seed_reviews(
    writer: CopyWriter,
    *,
    count: int,
    rng: random.Random,
    product_ids: Sequence[int],
    customer_ids: Sequence[int],
) -> None:
    pairs = _customer_product_pairs(rng, count, len(customer_ids), len(product_ids))
    writer.copy(
        Review,
        ("product", "customer", "rating", "title", "body", "created_at"),
        _review_rows(rng, pairs, product_ids, customer_ids),
    )


def _customer_product_pairs(rng, count, customers, products) -> list[tuple[int, int]]:
    """Draw `count` distinct (customer, product) index pairs, one review each."""
    pairs, seen = [], set()
    while len(pairs) < count:
        # Squaring a uniform draw favours low indexes: a few products collect
        # many reviews, as bestsellers do, which gives rankings something to rank.
        pair = (rng.randrange(customers), int(products * rng.random() ** 2))
        if pair not in seen:
            seen.add(pair)
            pairs.append(pair)
    return pairs


def _review_rows(rng, pairs, product_ids, customer_ids) -> Iterator[tuple]:
    # No id column: nothing points at a review, so the identity default
    # numbers them.
    for customer, product in pairs:
        rating = rng.choices(RATINGS, weights=RATING_WEIGHTS)[0]
        yield (
            product_ids[product],
            customer_ids[customer],
            rating,
            rng.choice(REVIEW_TITLES[rating]),
            rng.choice(REVIEW_BODIES[rating]),
            # Customers joined and products launched at least 200 days earlier.
            moment_between(rng, 180, 0),
        )
