from django.urls import path

from analytics.api import views

urlpatterns = [
    path("sales/", views.SalesApi.as_view(), name="report-sales"),
    path("daily/", views.DailyApi.as_view(), name="report-daily"),
    path("daily-sales/", views.DailySalesApi.as_view(), name="report-daily-sales"),
    path("top-products/", views.TopProductsApi.as_view(), name="report-top-products"),
    path(
        "customers-without-orders/",
        views.CustomersWithoutOrdersApi.as_view(),
        name="report-customers-without-orders",
    ),
    path(
        "categories-without-sales/",
        views.CategoriesWithoutSalesApi.as_view(),
        name="report-categories-without-sales",
    ),
    path(
        "category-rollup/",
        views.CategoryRollupApi.as_view(),
        name="report-category-rollup",
    ),
    path("cohorts/", views.CohortsApi.as_view(), name="report-cohorts"),
    path(
        "bought-together/",
        views.BoughtTogetherApi.as_view(),
        name="report-bought-together",
    ),
    path("events/", views.EventsApi.as_view(), name="event-log"),
    path("funnel/", views.FunnelApi.as_view(), name="report-funnel"),
]
