"""Lab `selector-sql` (05): the one query a page of catalog.selectors.product_list
sends, with its WHERE, ORDER BY and LIMIT, and the plan PostgreSQL runs it with.
(The category's subtree is read before, by a query of its own.)
"""

from decimal import Decimal

import sqlparse
from django.db import connections
from django.test.utils import CaptureQueriesContext

from catalog import selectors
from catalog.models import Category, Product, ProductVariant, StockLevel, Warehouse
from shop.lab import Narrator, lab, rolled_back


def _lamps(category: Category, warehouse: Warehouse) -> None:
    """Products with one variant each, priced and stocked to exercise each filter."""
    lamps = [
        # name, price, units available
        ("Night light", "9.00", 10),  # below min_price
        ("Reading lamp", "15.50", 3),
        ("Desk lamp", "24.00", 5),
        ("Wall lamp", "35.00", 4),  # cut by LIMIT
        ("Floor lamp", "89.00", 0),  # out of stock
        ("Chandelier", "450.00", 2),  # above max_price
    ]
    for position, (name, price, units) in enumerate(lamps, start=1):
        product = Product.objects.create(
            category=category, name=f"Lab {name}", slug=f"lab-05-lamp-{position}"
        )
        variant = ProductVariant.objects.create(
            product=product, sku=f"LAB-05-{position}", price=Decimal(price)
        )
        StockLevel.objects.create(
            variant=variant, warehouse=warehouse, quantity_on_hand=units
        )


@lab(
    "selector-sql",
    chapter="05",
    summary="The SQL catalog.selectors.product_list runs: WHERE, ORDER BY, LIMIT",
)
def selector_sql(n: Narrator) -> None:
    connection = connections["default"]
    with rolled_back("default"):
        category = Category.objects.create(name="Lab 05 lamps", slug="lab-05-lamps")
        warehouse = Warehouse.objects.create(code="LAB-05", name="Lab 05")
        _lamps(category, warehouse)
        n.say("setup (ORM, inside the transaction): six lamps in 'lab-05-lamps':")
        n.table(
            ["product", "price", "on_hand"],
            list(
                StockLevel.objects.filter(warehouse=warehouse)
                .order_by("variant__price")
                .values_list(
                    "variant__product__name", "variant__price", "quantity_on_hand"
                )
            ),
        )

        n.step("The call, as the API's product list makes it")
        n.say(
            '    selectors.product_list(category="lab-05-lamps", min_price=10,\n'
            '        max_price=100, in_stock=True, ordering="price")[:2]'
        )
        queryset = selectors.product_list(
            category="lab-05-lamps",
            min_price=Decimal("10"),
            max_price=Decimal("100"),
            in_stock=True,
            ordering="price",
        )[:2]
        sql, params = queryset.query.sql_with_params()
        n.show_sql(
            sqlparse.format(sql, reindent=True),
            params,
            label="the SQL, with its parameters kept apart (re-indented to read)",
        )

        with CaptureQueriesContext(connection) as captured:
            products = list(queryset)
        executed = captured.captured_queries[-1]["sql"]
        n.say(f"\n    ran {len(captured)} query in {captured[-1]['time']} s")
        n.expect(len(captured) == 1, "one query for the whole page: no N+1")
        n.expect(
            " WHERE " in executed,
            "the filters are a WHERE clause: the database drops rows, not Python",
        )
        n.expect(
            " ORDER BY " in executed and executed.rstrip().endswith("LIMIT 2"),
            "ORDER BY sorts and LIMIT 2 cuts in the database (the slice [:2] "
            "became LIMIT)",
        )
        n.table(
            ["name", "price", "available"],
            [(p.name, p.min_price, p.available) for p in products],
        )
        n.expect(
            [(p.name, p.min_price, p.available) for p in products]
            == [
                ("Lab Reading lamp", Decimal("15.50"), 3),
                ("Lab Desk lamp", Decimal("24.00"), 5),
            ],
            "the two cheapest lamps in stock between 10 and 100 came back, cheapest "
            "first",
        )

        n.step("EXPLAIN: how PostgreSQL runs it")
        n.say("    queryset.explain(costs=False)  -- EXPLAIN (COSTS false) <the SQL>")
        plan = queryset.explain(costs=False)
        for line in plan.splitlines():
            n.say(f"    {line}")
        n.expect(
            plan.lstrip().startswith("Limit"),
            "the plan's top node is Limit: execution stops after two rows",
        )
