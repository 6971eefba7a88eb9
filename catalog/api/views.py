from drf_spectacular.utils import extend_schema
from rest_framework import status
from rest_framework.permissions import IsAdminUser
from rest_framework.response import Response
from rest_framework.views import APIView

from catalog import selectors, services
from catalog.api.pagination import ProductCursorPagination
from catalog.api.serializers import (
    CategoryNodeOutput,
    ProductCreateInput,
    ProductDetailOutput,
    ProductListInput,
    ProductListOutput,
    StockOutput,
    StockPatchInput,
)
from shop.errors import ShopError


def _not_found(what):
    return ShopError(f"{what} was not found.", code="not_found", status_code=404)


class CategoryTreeApi(APIView):
    permission_classes = []

    @extend_schema(responses={200: CategoryNodeOutput(many=True)})
    def get(self, request):
        return Response(selectors.category_tree())


class ProductListCreateApi(APIView):
    pagination_class = ProductCursorPagination

    def get_permissions(self):
        return [IsAdminUser()] if self.request.method == "POST" else []

    @extend_schema(
        parameters=[ProductListInput], responses={200: ProductListOutput(many=True)}
    )
    def get(self, request):
        filters = ProductListInput(data=request.query_params)
        filters.is_valid(raise_exception=True)
        products = selectors.product_list(**filters.validated_data)
        paginator = self.pagination_class()
        page = paginator.paginate_queryset(products, request, view=self)
        return paginator.get_paginated_response(ProductListOutput(page, many=True).data)

    @extend_schema(request=ProductCreateInput, responses={201: ProductDetailOutput})
    def post(self, request):
        data = ProductCreateInput(data=request.data)
        data.is_valid(raise_exception=True)
        product = services.product_create(
            name=data.validated_data["name"],
            category_slug=data.validated_data["category"],
            description=data.validated_data["description"],
            variants=[
                services.VariantSpec(**v) for v in data.validated_data["variants"]
            ],
        )
        detail = selectors.product_get(slug=product.slug)
        return Response(
            ProductDetailOutput(detail).data, status=status.HTTP_201_CREATED
        )


class ProductDetailApi(APIView):
    permission_classes = []

    @extend_schema(responses={200: ProductDetailOutput})
    def get(self, request, slug):
        product = selectors.product_get(slug=slug)
        if product is None:
            raise _not_found(f"Product {slug!r}")
        return Response(ProductDetailOutput(product).data)


class StockApi(APIView):
    permission_classes = [IsAdminUser]

    def _render(self, sku):
        variant = selectors.variant_stock_get(sku=sku)
        if variant is None:
            raise _not_found(f"SKU {sku!r}")
        levels = list(variant.stock_levels.all())
        on_hand = sum(level.quantity_on_hand for level in levels)
        reserved = sum(level.reserved for level in levels)
        body = {
            "sku": variant.sku,
            "quantity_on_hand": on_hand,
            "reserved": reserved,
            "available": on_hand - reserved,
            "warehouses": levels,
        }
        return Response(StockOutput(body).data)

    @extend_schema(responses={200: StockOutput})
    def get(self, request, sku):
        return self._render(sku)

    @extend_schema(request=StockPatchInput, responses={200: StockOutput})
    def patch(self, request, sku):
        data = StockPatchInput(data=request.data)
        data.is_valid(raise_exception=True)
        services.stock_set(
            sku=sku,
            quantity_on_hand=data.validated_data["quantity_on_hand"],
            warehouse_code=data.validated_data.get("warehouse"),
        )
        return self._render(sku)
