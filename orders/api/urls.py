from django.urls import path

from orders.api.views import (
    CartApi,
    CartItemAddApi,
    CartItemApi,
    CheckoutApi,
    OrderCancelApi,
    OrderDetailApi,
    OrderListApi,
)

urlpatterns = [
    path("cart/", CartApi.as_view(), name="cart"),
    path("cart/items/", CartItemAddApi.as_view(), name="cart-item-add"),
    path("cart/items/<int:item_id>/", CartItemApi.as_view(), name="cart-item"),
    path("checkout/", CheckoutApi.as_view(), name="checkout"),
    path("orders/", OrderListApi.as_view(), name="order-list"),
    path("orders/<int:order_id>/", OrderDetailApi.as_view(), name="order-detail"),
    path(
        "orders/<int:order_id>/cancel/", OrderCancelApi.as_view(), name="order-cancel"
    ),
]
