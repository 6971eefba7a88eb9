"""API clients that log in the way production clients do."""

from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient


def token_client(user) -> APIClient:
    """A client that sends `Authorization: Token <key>` with every request.

    Unlike force_authenticate, each request pays what a real one pays: the
    token lookup, and the user and customer it loads, all come from the
    database, not from objects the test already holds.
    """
    token, _ = Token.objects.get_or_create(user=user)
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {token.key}")
    return client
