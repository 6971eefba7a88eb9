"""The staff catalog write API: PATCH a product, PATCH a variant."""

from decimal import Decimal

import pytest

from catalog.models import Product, ProductVariant
from tests.catalog.factories import (
    CategoryFactory,
    ProductFactory,
    StockLevelFactory,
    VariantFactory,
)

pytestmark = pytest.mark.django_db


def listed_price(api_client, slug):
    """The price the shop's list shows for the product `slug` (None if unlisted)."""
    body = api_client.get("/api/v1/products/?page_size=100").json()
    prices = {p["slug"]: p["price"] for p in body["results"]}
    return prices.get(slug)


class TestProductPatch:
    def test_staff_changes_the_fields_given_and_gets_the_staff_detail(
        self, staff_client
    ):
        level = StockLevelFactory(quantity_on_hand=4)
        product = level.variant.product
        lighting = CategoryFactory(slug="lighting", name="Lighting")

        response = staff_client.patch(
            f"/api/v1/products/{product.slug}/",
            {"name": "Brass Lamp", "category": "lighting"},
            format="json",
        )

        assert response.status_code == 200, response.json()
        body = response.json()
        assert (body["name"], body["slug"], body["category"]["slug"]) == (
            "Brass Lamp",
            product.slug,
            "lighting",
        )
        assert body["description"] == product.description  # not sent, not changed
        assert body["is_active"] is True
        assert [(v["sku"], v["available"]) for v in body["variants"]] == [
            (level.variant.sku, 4)
        ]
        product.refresh_from_db()
        assert product.category == lighting

    def test_a_deactivated_product_leaves_the_shop_but_staff_still_see_it(
        self, staff_client, api_client
    ):
        product = VariantFactory().product
        url = f"/api/v1/products/{product.slug}/"

        body = staff_client.patch(url, {"is_active": False}, format="json").json()

        assert body["is_active"] is False
        assert api_client.get(url).status_code == 404
        assert listed_price(api_client, product.slug) is None
        staff_client.patch(url, {"is_active": True}, format="json")
        assert api_client.get(url).status_code == 200

    def test_a_description_may_be_cleared(self, staff_client):
        product = VariantFactory().product
        response = staff_client.patch(
            f"/api/v1/products/{product.slug}/", {"description": ""}, format="json"
        )
        assert response.json()["description"] == ""
        product.refresh_from_db()
        assert (product.description, product.name) == ("", product.name)

    @pytest.mark.parametrize(
        "body, status, code",
        [
            ({}, 400, "nothing_to_change"),
            ({"category": "no-such-category"}, 400, "unknown_category"),
            ({"name": ""}, 400, "invalid"),
            ({"name": "x" * 201}, 400, "invalid"),
            ({"is_active": "perhaps"}, 400, "invalid"),
            ({"slug": "new-slug"}, 400, "nothing_to_change"),  # not a field here
        ],
    )
    def test_bad_changes_are_refused_with_a_code(
        self, staff_client, body, status, code
    ):
        product = VariantFactory().product
        response = staff_client.patch(
            f"/api/v1/products/{product.slug}/", body, format="json"
        )
        assert (response.status_code, response.json()["code"]) == (status, code)
        assert Product.objects.get(pk=product.pk).name == product.name

    def test_an_unknown_slug_is_a_404(self, staff_client):
        response = staff_client.patch(
            "/api/v1/products/nope/", {"name": "X"}, format="json"
        )
        assert (response.status_code, response.json()["code"]) == (404, "not_found")

    def test_only_staff_may_patch(self, customer_client, api_client):
        product = VariantFactory().product
        url = f"/api/v1/products/{product.slug}/"
        assert (
            customer_client.patch(url, {"name": "X"}, format="json").status_code == 403
        )
        assert api_client.patch(url, {"name": "X"}, format="json").status_code == 401
        assert Product.objects.get(pk=product.pk).name == product.name


class TestVariantPatch:
    def test_a_price_change_moves_the_products_price_in_list_and_detail(
        self, staff_client, api_client
    ):
        """min_price follows through the trigger, in the PATCH's transaction."""
        product = ProductFactory()
        cheap = VariantFactory(product=product, price=Decimal("10.00"))
        VariantFactory(product=product, price=Decimal("20.00"))
        assert listed_price(api_client, product.slug) == "10.00"

        response = staff_client.patch(
            f"/api/v1/variants/{cheap.sku}/", {"price": "25.00"}, format="json"
        )

        assert response.status_code == 200, response.json()
        assert response.json()["price"] == "20.00"
        assert listed_price(api_client, product.slug) == "20.00"
        detail = api_client.get(f"/api/v1/products/{product.slug}/").json()
        assert detail["price"] == "20.00"
        assert Product.objects.get(pk=product.pk).min_price == Decimal("20.00")

    def test_deactivating_the_last_active_variant_unlists_the_product(
        self, staff_client, api_client
    ):
        variant = VariantFactory(price=Decimal("10.00"))
        slug = variant.product.slug

        body = staff_client.patch(
            f"/api/v1/variants/{variant.sku}/", {"is_active": False}, format="json"
        ).json()

        assert body["price"] is None
        assert [(v["sku"], v["is_active"]) for v in body["variants"]] == [
            (variant.sku, False)
        ]
        assert listed_price(api_client, slug) is None
        assert api_client.get(f"/api/v1/products/{slug}/").status_code == 404

        staff_client.patch(
            f"/api/v1/variants/{variant.sku}/",
            {"is_active": True, "price": "7.50"},
            format="json",
        )
        assert listed_price(api_client, slug) == "7.50"

    @pytest.mark.parametrize(
        "body, code",
        [
            ({}, "nothing_to_change"),
            ({"price": "-1.00"}, "invalid"),
            ({"price": "1.001"}, "invalid"),
            ({"price": "NaN"}, "invalid"),
            ({"price": "10000000000.00"}, "invalid"),
            ({"is_active": None}, "invalid"),
        ],
    )
    def test_bad_changes_are_a_400_and_change_nothing(self, staff_client, body, code):
        variant = VariantFactory(price=Decimal("10.00"))
        response = staff_client.patch(
            f"/api/v1/variants/{variant.sku}/", body, format="json"
        )
        assert (response.status_code, response.json()["code"]) == (400, code)
        assert ProductVariant.objects.get(pk=variant.pk).price == Decimal("10.00")

    def test_an_unknown_or_malformed_sku_is_a_404(self, staff_client):
        for sku in ("NOPE-1", "lower-case"):
            response = staff_client.patch(
                f"/api/v1/variants/{sku}/", {"price": "1.00"}, format="json"
            )
            assert response.status_code == 404

    def test_only_staff_may_patch(self, customer_client, api_client):
        variant = VariantFactory(price=Decimal("10.00"))
        url = f"/api/v1/variants/{variant.sku}/"
        assert (
            customer_client.patch(url, {"price": "1.00"}, format="json").status_code
            == 403
        )
        assert (
            api_client.patch(url, {"price": "1.00"}, format="json").status_code == 401
        )
        assert ProductVariant.objects.get(pk=variant.pk).price == Decimal("10.00")
