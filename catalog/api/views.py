from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import status
from rest_framework.permissions import AllowAny, IsAdminUser
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
    ProductPatchInput,
    StaffProductDetailOutput,
    StockOutput,
    StockPatchInput,
    StockQueryInput,
    VariantPatchInput,
)
from shop.errors import NotFound
from shop.openapi import error_response

# Django's <slug:> converter, so that the schema promises what the URL accepts.
SLUG_PARAMETER = OpenApiParameter(
    "slug", str, OpenApiParameter.PATH, pattern=r"^[-a-zA-Z0-9_]+$"
)


def _not_found(what):
    return NotFound(f"{what} was not found.")


class CategoryTreeApi(APIView):
    permission_classes = [AllowAny]

    @extend_schema(responses={200: CategoryNodeOutput(many=True)})
    def get(self, request):
        tree = selectors.category_tree()
        return Response(CategoryNodeOutput(tree, many=True).data)


class ProductListCreateApi(APIView):
    pagination_class = ProductCursorPagination

    def get_permissions(self):
        return [IsAdminUser()] if self.request.method == "POST" else [AllowAny()]

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

    @extend_schema(
        request=ProductCreateInput,
        responses={
            201: ProductDetailOutput,
            409: error_response(
                "`sku_taken` (the SKUs in `skus`) or `slug_conflict`: "
                "choose other SKUs or another name."
            ),
        },
    )
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


def _staff_detail(slug):
    """The product as staff see it after a change, inactive parts included."""
    return Response(
        StaffProductDetailOutput(
            selectors.product_get(slug=slug, listed_only=False)
        ).data
    )


class ProductDetailApi(APIView):
    def get_permissions(self):
        return [IsAdminUser()] if self.request.method == "PATCH" else [AllowAny()]

    @extend_schema(parameters=[SLUG_PARAMETER], responses={200: ProductDetailOutput})
    def get(self, request, slug):
        product = selectors.product_get(slug=slug)
        if product is None:
            raise _not_found(f"Product {slug!r}")
        return Response(ProductDetailOutput(product).data)

    @extend_schema(
        parameters=[SLUG_PARAMETER],
        request=ProductPatchInput,
        responses={200: StaffProductDetailOutput},
        description="Change the fields given (at least one); the slug stays. "
        "The answer is the product as staff see it, inactive variants included.",
    )
    def patch(self, request, slug):
        data = ProductPatchInput(data=request.data)
        data.is_valid(raise_exception=True)
        changes = dict(data.validated_data)
        services.product_update(
            slug=slug, category_slug=changes.pop("category", None), **changes
        )
        return _staff_detail(slug)


class VariantApi(APIView):
    permission_classes = [IsAdminUser]

    @extend_schema(
        request=VariantPatchInput,
        responses={200: StaffProductDetailOutput},
        description="Change a variant's price or whether it is on sale (at least "
        "one). The answer is its product as staff see it: `price`, the lowest "
        "active price, already follows the change.",
    )
    def patch(self, request, sku):
        data = VariantPatchInput(data=request.data)
        data.is_valid(raise_exception=True)
        variant = services.variant_update(sku=sku, **data.validated_data)
        return _staff_detail(variant.product.slug)


class StockApi(APIView):
    permission_classes = [IsAdminUser]

    def _render(self, sku, warehouse_code=None):
        summary = selectors.stock_summary(sku=sku, warehouse_code=warehouse_code)
        if summary is None:
            raise _not_found(f"SKU {sku!r}")
        return Response(StockOutput(summary).data)

    @extend_schema(
        parameters=[StockQueryInput],
        responses={200: StockOutput},
        description="Counts summed over all warehouses, or one warehouse's with "
        "?warehouse=CODE; `warehouses` lists each one.",
    )
    def get(self, request, sku):
        query = StockQueryInput(data=request.query_params)
        query.is_valid(raise_exception=True)
        return self._render(sku, query.validated_data.get("warehouse"))

    @extend_schema(
        request=StockPatchInput,
        responses={200: StockOutput},
        description="Set the units on hand in one warehouse (the default one unless "
        "`warehouse` is given); the response shows that warehouse's counts.",
    )
    def patch(self, request, sku):
        data = StockPatchInput(data=request.data)
        data.is_valid(raise_exception=True)
        warehouse = services.stock_set(
            sku=sku,
            quantity_on_hand=data.validated_data["quantity_on_hand"],
            warehouse_code=data.validated_data.get("warehouse"),
        )
        return self._render(sku, warehouse.code)
