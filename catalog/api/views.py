from urllib.parse import parse_qs, urlsplit

from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import status
from rest_framework.permissions import AllowAny, IsAdminUser
from rest_framework.response import Response
from rest_framework.utils.urls import remove_query_param, replace_query_param
from rest_framework.views import APIView

from catalog import cache as catalog_cache
from catalog import selectors, services
from catalog.api.pagination import ProductCursorPagination
from catalog.api.serializers import (
    CacheStatsOutput,
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
from catalog.views_buffer import record_view
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
        return Response(
            catalog_cache.category_tree(
                compute=lambda: (
                    CategoryNodeOutput(selectors.category_tree(), many=True).data
                )
            )
        )


def _cursor_of(link: str | None) -> str | None:
    """The cursor a paginator's link carries: "" for the first page, None for none."""
    if link is None:
        return None
    values = parse_qs(urlsplit(link).query).get(
        ProductCursorPagination.cursor_query_param
    )
    return values[0] if values else ""


def _link(request, cursor: str | None) -> str | None:
    """A link to the page `cursor` names, as the paginator makes it."""
    if cursor is None:
        return None
    url = request.build_absolute_uri()
    name = ProductCursorPagination.cursor_query_param
    return (
        replace_query_param(url, name, cursor)
        if cursor
        else remove_query_param(url, name)
    )


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
        paginator = self.pagination_class()
        page = catalog_cache.product_list_page(
            # Every parameter that decides the page's rows, as the page reads it.
            query={
                **filters.validated_data,
                "cursor": request.query_params.get(paginator.cursor_query_param),
                "page_size": paginator.get_page_size(request),
            },
            page=lambda: self._page(request, paginator, filters.validated_data),
            cards=lambda ids: (
                ProductListOutput(
                    selectors.product_list().filter(pk__in=ids), many=True
                ).data
            ),
        )
        # The shape of paginator.get_paginated_response(), links rebuilt
        # from this request: a cached page may have been made for another
        # host name.
        return Response(
            {
                "next": _link(request, page.next),
                "previous": _link(request, page.previous),
                "results": page.cards,
            }
        )

    def _page(self, request, paginator, filters) -> catalog_cache.ListPage:
        products = selectors.product_list(**filters)
        rows = paginator.paginate_queryset(products, request, view=self)
        return catalog_cache.ListPage(
            cards=ProductListOutput(rows, many=True).data,
            next=_cursor_of(paginator.get_next_link()),
            previous=_cursor_of(paginator.get_previous_link()),
        )

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
        body = catalog_cache.product_detail(
            slug=slug, compute=lambda: self._detail(slug)
        )
        if body is None:
            raise _not_found(f"Product {slug!r}")
        # One Redis round trip, never a database write (catalog/views_buffer.py).
        record_view(
            product_id=body["id"],
            user_id=request.user.pk if request.user.is_authenticated else None,
        )
        return Response(body)

    @staticmethod
    def _detail(slug):
        product = selectors.product_get(slug=slug)
        return None if product is None else ProductDetailOutput(product).data

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


class CacheStatsApi(APIView):
    permission_classes = [IsAdminUser]

    @extend_schema(
        responses={200: CacheStatsOutput},
        description="The catalog cache's hits, misses and fills since the "
        "counters were last reset, per kind of page. `status` is `down` (and "
        "`kinds` null) while Redis does not answer; the catalog is then read "
        "from the database.",
    )
    def get(self, request):
        return Response(CacheStatsOutput(catalog_cache.stats_report()).data)
