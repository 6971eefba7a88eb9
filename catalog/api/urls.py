from django.urls import path

from catalog.api.views import (
    CategoryTreeApi,
    ProductDetailApi,
    ProductListCreateApi,
    StockApi,
)

urlpatterns = [
    path("categories/", CategoryTreeApi.as_view(), name="category-tree"),
    path("products/", ProductListCreateApi.as_view(), name="product-list"),
    path("products/<slug:slug>/", ProductDetailApi.as_view(), name="product-detail"),
    path("stock/<str:sku>/", StockApi.as_view(), name="stock"),
]
