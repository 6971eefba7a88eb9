from django.contrib import admin
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView

from shop.health import healthz

urlpatterns = [
    path("healthz", healthz, name="healthz"),
    path("admin/", admin.site.urls),
    path("api/schema/", SpectacularAPIView.as_view(), name="schema"),
    path(
        "api/docs/",
        SpectacularSwaggerView.as_view(url_name="schema"),
        name="swagger-ui",
    ),
    path("api/v1/auth/", include("shop.accounts.api.urls")),
    path("api/v1/", include("catalog.api.urls")),
    path("api-auth/", include("rest_framework.urls")),
]

handler404 = "shop.errors.not_found"
handler500 = "shop.errors.server_error"
