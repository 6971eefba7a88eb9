from drf_spectacular.utils import extend_schema
from rest_framework import status
from rest_framework.permissions import AllowAny
from rest_framework.response import Response
from rest_framework.views import APIView

from shop.accounts import services
from shop.accounts.api.serializers import (
    RegisterInput,
    TokenInput,
    TokenOutput,
    UserOutput,
)
from shop.accounts.api.throttling import (
    RegisterIpThrottle,
    TokenEmailThrottle,
    TokenIpThrottle,
)


class UserRegisterApi(APIView):
    authentication_classes = []
    permission_classes = [AllowAny]
    throttle_classes = [RegisterIpThrottle]

    @extend_schema(request=RegisterInput, responses={201: UserOutput})
    def post(self, request):
        data = RegisterInput(data=request.data)
        data.is_valid(raise_exception=True)
        user = services.user_register(**data.validated_data)
        return Response(UserOutput(user).data, status=status.HTTP_201_CREATED)


class TokenIssueApi(APIView):
    authentication_classes = []
    permission_classes = [AllowAny]
    throttle_classes = [TokenIpThrottle, TokenEmailThrottle]

    @extend_schema(request=TokenInput, responses={200: TokenOutput})
    def post(self, request):
        data = TokenInput(data=request.data)
        data.is_valid(raise_exception=True)
        token = services.token_issue(**data.validated_data)
        return Response(TokenOutput({"token": token.key}).data)
