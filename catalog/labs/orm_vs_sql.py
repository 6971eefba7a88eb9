"""Lab `orm-vs-sql` (17): one question, asked through the ORM
(category_price_summary_orm) and as a versioned .sql file, returns the same rows.
"""

from decimal import Decimal

import sqlparse
from django.db import connections
from django.db.models import Count, Min, Q
from django.test.utils import CaptureQueriesContext

from catalog.models import Category, Product, ProductVariant
from shop.lab import Narrator, lab, rolled_back
from shop.sql_files import read_sql


def category_price_summary_orm(*, parent_id: int):
    """The ORM's way of asking what category_price_summary_v01.sql asks."""
    active = Q(products__is_active=True)
    return (
        Category.objects.filter(parent_id=parent_id)
        .annotate(
            product_count=Count("products", filter=active, distinct=True),
            lowest_price=Min(
                "products__variants__price",
                filter=active & Q(products__variants__is_active=True),
            ),
        )
        .order_by("name", "id")
        .values_list("id", "name", "product_count", "lowest_price")
    )


@lab(
    "orm-vs-sql",
    chapter="17",
    summary="One question, asked through the ORM and as a raw .sql file: same rows",
)
def orm_vs_sql(n: Narrator) -> None:
    with rolled_back("default"):
        apparel = Category.objects.create(name="Lab 17 apparel", slug="lab-17-apparel")
        shirts, shoes, _hats = (
            Category.objects.create(
                name=name, slug=f"lab-17-{name.lower()}", parent=apparel
            )
            for name in ("Shirts", "Shoes", "Hats")
        )
        catalog = [
            # category, product, active?, [(price, active?), ...]
            (
                shirts,
                "Oxford",
                True,
                [("39.00", True), ("29.50", True), ("19.00", False)],
            ),
            (shirts, "Linen", True, [("45.00", True)]),
            (shirts, "Retired", False, [("5.00", True)]),
            (shoes, "Runner", True, [("89.90", True), ("79.00", True)]),
        ]
        for category, name, is_active, variants in catalog:
            product = Product.objects.create(
                category=category,
                name=f"Lab {name}",
                slug=f"lab-17-{name.lower()}",
                is_active=is_active,
            )
            for position, (price, variant_active) in enumerate(variants, start=1):
                ProductVariant.objects.create(
                    product=product,
                    sku=f"LAB-17-{name.upper()}-{position}",
                    price=Decimal(price),
                    is_active=variant_active,
                )
        n.say(
            "setup (ORM, inside the transaction): 'Lab 17 apparel' with Shirts\n"
            "(Oxford 39.00/29.50 + an inactive 19.00 variant, Linen 45.00, an\n"
            "inactive product at 5.00), Shoes (Runner 89.90/79.00) and empty Hats."
        )
        question = "per sub-category: how many active products, from what price?"

        n.step(f"The ORM: {question}")
        n.say(
            "    Category.objects.filter(parent_id=...).annotate(\n"
            '        product_count=Count("products", filter=active, distinct=True),\n'
            '        lowest_price=Min("products__variants__price", filter=...))'
        )
        queryset = category_price_summary_orm(parent_id=apparel.pk)
        sql, params = queryset.query.sql_with_params()
        n.show_sql(
            sqlparse.format(sql, reindent=True),
            params,
            label="the SQL Django generates (re-indented to read)",
        )
        with CaptureQueriesContext(connections["default"]) as captured:
            orm_rows = list(queryset)
        n.table(["id", "name", "product_count", "lowest_price"], orm_rows)
        n.expect(len(captured) == 1, "the ORM answered in one query")

        n.step(f"Raw SQL from a versioned file: {question}")
        path = "catalog/sql/queries/category_price_summary_v01.sql"
        n.say(f"    read_sql({path!r})")
        raw_rows = [
            tuple(row) for row in n.sql(read_sql(path), {"parent_id": apparel.pk})
        ]

        n.step("Compare")
        n.expect(
            orm_rows == raw_rows, "both ways return the same rows, in the same order"
        )
        n.expect(
            [row[1:] for row in raw_rows]
            == [
                ("Hats", 0, None),
                ("Shirts", 2, Decimal("29.50")),
                ("Shoes", 1, Decimal("79.00")),
            ],
            "inactive products and variants are left out; the empty category stays",
        )
        n.say(
            "The ORM composes (filters, annotations, pagination) and keeps the model\n"
            "in one place; the .sql file is the query a chapter can show and a DBA\n"
            "can read and EXPLAIN as is. The shop uses the ORM by default and .sql\n"
            "files where SQL says it better (recursive CTEs, reports)."
        )
