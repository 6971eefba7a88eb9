"""The catalog API per the contract (DESIGN.md "API contract")."""

from decimal import Decimal

import pytest

from catalog.models import Product, StockLevel
from tests.catalog.factories import (
    CategoryFactory,
    ProductFactory,
    StockLevelFactory,
    VariantFactory,
    WarehouseFactory,
)

pytestmark = pytest.mark.django_db


def _cursor(position):
    """A well-formed cursor (shop/pagination.py's encoding) with a chosen position.

    The first ordering column's value is `position`; the id after it is a
    valid one, so that only `position` can make the cursor invalid.
    """
    import base64
    from urllib.parse import quote, urlencode

    raw = urlencode({"p": [position, "1"]}, doseq=True)
    return quote(base64.b64encode(raw.encode()).decode())


def items(body):
    return body["results"]


def make_product(name, price, on_hand=5, reserved=0, category=None, **kwargs):
    product = ProductFactory(
        name=name, category=category or CategoryFactory(), **kwargs
    )
    variant = VariantFactory(product=product, price=Decimal(price))
    StockLevelFactory(variant=variant, quantity_on_hand=on_hand, reserved=reserved)
    return product


class TestCategories:
    def test_the_tree_nests_children_under_parents_in_name_order(self, api_client):
        home = CategoryFactory(name="Home", slug="home")
        CategoryFactory(name="Lighting", slug="lighting", parent=home)
        desk = CategoryFactory(name="Desks", slug="desks", parent=home)
        CategoryFactory(name="Standing desks", slug="standing-desks", parent=desk)
        CategoryFactory(name="Garden", slug="garden")

        response = api_client.get("/api/v1/categories/")

        assert response.status_code == 200
        tree = response.json()
        assert [n["slug"] for n in tree] == ["garden", "home"]
        home_node = tree[1]
        assert [n["slug"] for n in home_node["children"]] == ["desks", "lighting"]
        assert home_node["children"][0]["children"][0]["slug"] == "standing-desks"
        assert home_node["children"][0]["children"][0]["depth"] == 2

    def test_the_tree_is_one_query(self, api_client, django_assert_num_queries):
        parent = CategoryFactory()
        for _ in range(5):
            CategoryFactory(parent=parent)
        with django_assert_num_queries(1):
            api_client.get("/api/v1/categories/")


class TestProductList:
    def test_lists_active_products_with_price_and_availability(self, api_client):
        make_product("Oak Desk Lamp", "19.99", on_hand=5, reserved=2)
        make_product("Hidden", "1.00", is_active=False)

        body = api_client.get("/api/v1/products/").json()

        assert [p["name"] for p in items(body)] == ["Oak Desk Lamp"]
        (product,) = items(body)
        assert product["price"] == "19.99"
        assert product["available"] == 3
        assert product["in_stock"] is True
        assert "next" in body and "previous" in body

    def test_filters_by_category_subtree(self, api_client):
        home = CategoryFactory(slug="home")
        lamps = CategoryFactory(slug="lamps", parent=home)
        make_product("Lamp", "10.00", category=lamps)
        make_product("Rake", "10.00", category=CategoryFactory(slug="garden"))

        names = [
            p["name"]
            for p in items(api_client.get("/api/v1/products/?category=home").json())
        ]

        assert names == ["Lamp"]

    def test_full_text_search_matches_words_in_name_and_description(self, api_client):
        make_product("Oak Desk Lamp", "10.00")
        make_product("Garden Rake", "10.00", description="Lamps not included")
        make_product("Teapot", "10.00")

        names = {
            p["name"]
            for p in items(api_client.get("/api/v1/products/?search=lamp").json())
        }

        assert names == {"Oak Desk Lamp", "Garden Rake"}

    def test_price_range_and_in_stock_filters(self, api_client):
        make_product("Cheap", "5.00")
        make_product("Mid", "50.00")
        make_product("Mid sold out", "55.00", on_hand=2, reserved=2)
        make_product("Dear", "500.00")

        url = "/api/v1/products/?min_price=10&max_price=100"
        assert {p["name"] for p in items(api_client.get(url).json())} == {
            "Mid",
            "Mid sold out",
        }
        url += "&in_stock=true"
        assert [p["name"] for p in items(api_client.get(url).json())] == ["Mid"]
        url = url.replace("true", "false")
        assert [p["name"] for p in items(api_client.get(url).json())] == [
            "Mid sold out"
        ]

    @pytest.mark.parametrize(
        "ordering, expected",
        [
            ("price", ["A", "B", "C"]),
            ("-price", ["C", "B", "A"]),
            ("name", ["A", "B", "C"]),
        ],
    )
    def test_ordering(self, api_client, ordering, expected):
        make_product("B", "20.00")
        make_product("C", "30.00")
        make_product("A", "10.00")

        body = api_client.get(f"/api/v1/products/?ordering={ordering}").json()

        assert [p["name"] for p in items(body)] == expected

    def test_cursor_pagination_walks_every_product_once_even_with_price_ties(
        self, api_client
    ):
        for i in range(7):
            make_product(f"P{i}", "10.00" if i % 2 else "20.00")
        seen, url = [], "/api/v1/products/?ordering=price&page_size=2"
        while url:
            body = api_client.get(url).json()
            seen += [p["name"] for p in items(body)]
            url = body["next"]

        assert sorted(seen) == [f"P{i}" for i in range(7)]
        assert len(seen) == 7

    @pytest.mark.parametrize("page_size", [2, 10])
    def test_query_count_does_not_grow_with_page_size(
        self, api_client, django_assert_num_queries, page_size
    ):
        for i in range(12):
            make_product(f"P{i}", "10.00")
        with django_assert_num_queries(1):
            response = api_client.get(f"/api/v1/products/?page_size={page_size}")
        assert len(items(response.json())) == page_size

    @pytest.mark.parametrize(
        "query",
        [
            "min_price=abc",
            "max_price=-1",
            "min_price=10&max_price=5",
            "in_stock=maybe",
            "ordering=password",
            "ordering=price;DROP TABLE catalog_product",
            "ordering=relevance",  # ranks a search's matches: needs search
            "category=not a slug!",
            "cursor=garbage",
            # Cursors that decode but carry a position the column cannot hold.
            "ordering=price&cursor=" + _cursor("abc"),
            "ordering=price&cursor=" + _cursor("NaN"),
            "ordering=price&cursor=" + _cursor("1e400"),
            "ordering=newest&cursor=" + _cursor("not a date"),
            "ordering=name&cursor=" + _cursor("a\x00b"),
            "search=lamp%00",
        ],
    )
    def test_bad_query_parameters_are_a_400_with_code_and_detail(
        self, api_client, query
    ):
        response = api_client.get(f"/api/v1/products/?{query}")

        assert response.status_code in (400, 404)
        assert {"code", "detail"} <= set(response.json())


class TestProductDetail:
    def test_detail_has_variants_with_price_and_available_stock(self, api_client):
        product = make_product("Oak Desk Lamp", "19.99", on_hand=4, reserved=1)
        second = VariantFactory(product=product, sku="LAMP-BIG", price=Decimal("29.99"))
        StockLevelFactory(variant=second, quantity_on_hand=0)

        body = api_client.get(f"/api/v1/products/{product.slug}/").json()

        assert body["name"] == "Oak Desk Lamp"
        assert body["price"] == "19.99"
        assert [(v["price"], v["available"]) for v in body["variants"]] == [
            ("19.99", 3),
            ("29.99", 0),
        ]

    def test_detail_is_two_queries_whatever_its_variants(
        self, api_client, django_assert_num_queries
    ):
        # The product with its category, then its variants: a field the
        # selector deferred and the serializer reads would be a third.
        product = make_product("Oak Desk Lamp", "19.99", on_hand=4)
        for n in range(3):
            VariantFactory(product=product, sku=f"LAMP-{n}", price=Decimal("29.99"))
        with django_assert_num_queries(2):
            body = api_client.get(f"/api/v1/products/{product.slug}/").json()
        assert body["description"] == product.description
        assert len(body["variants"]) == 4

    def test_unknown_slug_is_a_404_with_code(self, api_client):
        response = api_client.get("/api/v1/products/nope/")
        assert response.status_code == 404
        assert response.json()["code"] == "not_found"


class TestProductCreate:
    def body(self, **overrides):
        category = CategoryFactory(slug="lighting")
        return {
            "name": "Brass Floor Lamp",
            "category": category.slug,
            "description": "Tall and warm.",
            "variants": [
                {"sku": "LAMP-BRASS-S", "price": "49.00", "stock": 3},
                {"sku": "LAMP-BRASS-L", "price": "79.50", "stock": 0},
            ],
            **overrides,
        }

    def test_staff_creates_a_product_with_variants_and_stock(self, staff_client):
        WarehouseFactory()
        response = staff_client.post("/api/v1/products/", self.body(), format="json")

        assert response.status_code == 201, response.json()
        body = response.json()
        assert body["slug"] == "brass-floor-lamp"
        assert {v["sku"]: v["available"] for v in body["variants"]} == {
            "LAMP-BRASS-S": 3,
            "LAMP-BRASS-L": 0,
        }
        assert (
            StockLevel.objects.filter(variant__product__slug="brass-floor-lamp").count()
            == 2
        )

    def test_the_same_name_gets_a_distinct_slug(self, staff_client):
        WarehouseFactory()
        ProductFactory(slug="brass-floor-lamp")
        response = staff_client.post("/api/v1/products/", self.body(), format="json")
        assert response.json()["slug"] == "brass-floor-lamp-2"

    def test_an_existing_sku_is_a_409_and_nothing_is_created(self, staff_client):
        WarehouseFactory()
        VariantFactory(sku="LAMP-BRASS-L")
        before = Product.objects.count()

        response = staff_client.post("/api/v1/products/", self.body(), format="json")

        assert response.status_code == 409
        assert response.json()["code"] == "sku_taken"
        assert Product.objects.count() == before

    @pytest.mark.parametrize(
        "overrides, code",
        [
            ({"category": "no-such-category"}, "unknown_category"),
            ({"variants": []}, "invalid"),
            (
                {"variants": [{"sku": "lower-case", "price": "1.00", "stock": 1}]},
                "invalid",
            ),
            ({"variants": [{"sku": "A-1", "price": "-1.00", "stock": 1}]}, "invalid"),
            ({"variants": [{"sku": "A-1", "price": "1.00", "stock": -1}]}, "invalid"),
            ({"variants": [{"sku": "A-1", "price": "1.001", "stock": 1}]}, "invalid"),
            (
                {"variants": [{"sku": "A-1", "price": "1", "stock": 1}] * 2},
                "duplicate_sku",
            ),
            ({"name": ""}, "invalid"),
        ],
    )
    def test_bad_input_is_a_4xx_with_code(self, staff_client, overrides, code):
        WarehouseFactory()
        response = staff_client.post(
            "/api/v1/products/", self.body(**overrides), format="json"
        )
        assert response.status_code == 400
        assert response.json()["code"] == code

    def test_customers_and_anonymous_users_cannot_create(
        self, customer_client, api_client
    ):
        assert (
            customer_client.post("/api/v1/products/", {}, format="json").status_code
            == 403
        )
        assert (
            api_client.post("/api/v1/products/", {}, format="json").status_code == 401
        )


class TestStock:
    def test_staff_reads_stock_summed_over_warehouses(self, staff_client):
        level = StockLevelFactory(quantity_on_hand=5, reserved=2)
        other = WarehouseFactory(code="EAST", name="East", is_default=False)
        StockLevelFactory(variant=level.variant, warehouse=other, quantity_on_hand=1)

        body = staff_client.get(f"/api/v1/stock/{level.variant.sku}/").json()

        assert (body["quantity_on_hand"], body["reserved"], body["available"]) == (
            6,
            2,
            4,
        )
        assert [w["warehouse"] for w in body["warehouses"]] == ["EAST", "MAIN"]

    def test_patch_sets_one_warehouse_and_answers_with_its_counts(self, staff_client):
        level = StockLevelFactory(quantity_on_hand=5, reserved=1)
        east = WarehouseFactory(code="EAST", name="East", is_default=False)
        StockLevelFactory(variant=level.variant, warehouse=east, quantity_on_hand=7)
        url = f"/api/v1/stock/{level.variant.sku}/"

        body = staff_client.patch(url, {"quantity_on_hand": 2}, format="json").json()

        assert (body["warehouse"], body["quantity_on_hand"], body["available"]) == (
            "MAIN",
            2,
            1,
        )
        east_body = staff_client.patch(
            url, {"quantity_on_hand": 9, "warehouse": "EAST"}, format="json"
        ).json()
        assert (east_body["warehouse"], east_body["quantity_on_hand"]) == ("EAST", 9)
        total = staff_client.get(url).json()
        assert (total["warehouse"], total["quantity_on_hand"]) == (None, 11)
        assert staff_client.get(url + "?warehouse=EAST").json()["available"] == 9

    def test_a_staff_change_is_in_the_ledger_with_its_reason(self, staff_client):
        from orders.models import StockMovement

        level = StockLevelFactory(quantity_on_hand=3)
        staff_client.patch(
            f"/api/v1/stock/{level.variant.sku}/",
            {"quantity_on_hand": 8},
            format="json",
        )
        last = StockMovement.objects.filter(stock_level=level).latest("id")
        assert (last.reason, last.on_hand_delta) == ("staff_adjustment", 5)

    def test_staff_sets_quantity_on_hand(self, staff_client):
        level = StockLevelFactory(quantity_on_hand=3)
        response = staff_client.patch(
            f"/api/v1/stock/{level.variant.sku}/",
            {"quantity_on_hand": 8},
            format="json",
        )
        assert response.status_code == 200
        assert response.json()["available"] == 8

    def test_quantity_below_reserved_is_a_409_and_changes_nothing(self, staff_client):
        level = StockLevelFactory(quantity_on_hand=5, reserved=4)
        response = staff_client.patch(
            f"/api/v1/stock/{level.variant.sku}/",
            {"quantity_on_hand": 3},
            format="json",
        )
        assert response.status_code == 409
        assert response.json()["code"] == "stock_below_reserved"
        level.refresh_from_db()
        assert level.quantity_on_hand == 5

    @pytest.mark.parametrize(
        "body", [{}, {"quantity_on_hand": -1}, {"quantity_on_hand": "x"}]
    )
    def test_bad_patch_is_a_400(self, staff_client, body):
        level = StockLevelFactory()
        response = staff_client.patch(
            f"/api/v1/stock/{level.variant.sku}/", body, format="json"
        )
        assert response.status_code == 400
        assert response.json()["code"] == "invalid"

    def test_unknown_sku_is_a_404(self, staff_client):
        assert staff_client.get("/api/v1/stock/NOPE/").status_code == 404

    def test_customers_cannot_read_or_patch_stock(self, customer_client):
        level = StockLevelFactory()
        url = f"/api/v1/stock/{level.variant.sku}/"
        assert customer_client.get(url).status_code == 403
        assert (
            customer_client.patch(
                url, {"quantity_on_hand": 1}, format="json"
            ).status_code
            == 403
        )
