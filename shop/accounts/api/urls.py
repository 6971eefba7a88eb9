from django.urls import path

from shop.accounts.api.views import TokenIssueApi, UserRegisterApi

urlpatterns = [
    path("register/", UserRegisterApi.as_view(), name="auth-register"),
    path("token/", TokenIssueApi.as_view(), name="auth-token"),
]
