from django.contrib import admin
from django.urls import include, path, re_path

from shop.api_docs import RedocPage, SchemaApi, SwaggerPage
from shop.errors import not_found
from shop.health import healthz, livez, readyz
from shop.observability.api import TopQueriesApi
from shop.ping import PingApi

urlpatterns = [
    path("healthz", healthz, name="healthz"),
    # Liveness and readiness for load balancers and orchestrators (shop/health.py).
    path("livez", livez, name="livez"),
    path("readyz", readyz, name="readyz"),
    path("admin/", admin.site.urls),
    path("api/schema/", SchemaApi.as_view(), name="schema"),
    path("api/docs/", SwaggerPage.as_view(url_name="schema"), name="swagger-ui"),
    # The stock template links Google Fonts; this one loads nothing from
    # another host (tests/shop/test_api_docs.py).
    path(
        "api/redoc/",
        RedocPage.as_view(url_name="schema", template_name="shop/redoc.html"),
        name="redoc",
    ),
    path("api/v1/ping/", PingApi.as_view(), name="ping"),
    path("api/v1/ops/top-queries/", TopQueriesApi.as_view(), name="ops-top-queries"),
    path("api/v1/auth/", include("shop.accounts.api.urls")),
    path("api/v1/", include("catalog.api.urls")),
    path("api/v1/", include("orders.api.urls")),
    path("api/v1/analytics/", include("analytics.api.urls")),
    path("api-auth/", include("rest_framework.urls")),
    # JSON 404 for any other API path, DEBUG or not (handler404 is skipped in DEBUG).
    re_path(r"^api/", not_found),
]

handler404 = "shop.errors.not_found"
handler500 = "shop.errors.server_error"
