from django.urls import path, register_converter

from catalog.api.views import (
    CacheStatsApi,
    CategoryTreeApi,
    ProductDetailApi,
    ProductListCreateApi,
    StockApi,
    VariantApi,
)


class SkuConverter:
    """Only strings the SKU CHECK constraint allows reach the view (others: 404)."""

    regex = "[A-Z0-9][A-Z0-9-]{0,63}"

    def to_python(self, value):
        return value

    def to_url(self, value):
        return value


register_converter(SkuConverter, "sku")

urlpatterns = [
    path("categories/", CategoryTreeApi.as_view(), name="category-tree"),
    path("products/", ProductListCreateApi.as_view(), name="product-list"),
    path("products/<slug:slug>/", ProductDetailApi.as_view(), name="product-detail"),
    path("stock/<sku:sku>/", StockApi.as_view(), name="stock"),
    path("variants/<sku:sku>/", VariantApi.as_view(), name="variant"),
    path("catalog/cache/stats/", CacheStatsApi.as_view(), name="cache-stats"),
]
