"""GET /api/v1/ping/ (shop/ping.py): the framework's ceiling in the HTTP benchmark.

Its figures mean something only if it does no work of the shop's own, so
these tests run without database access (pytest-django refuses any query
outside a django_db test) and with a cache that fails every call.
"""

from django.core.cache.backends.base import BaseCache
from django.test import override_settings
from rest_framework.test import APIClient

from tests.openapi import assert_matches_schema, schema

PING = "/api/v1/ping/"


class RefusingCache(BaseCache):
    """A cache whose every call raises: BaseCache implements none of them."""

    def __init__(self, location, params):
        super().__init__(params)


NO_REDIS = {
    "CACHES": {"default": {"BACKEND": f"{__name__}.RefusingCache"}},
    # Nothing listens on port 1: a direct Redis client would be refused.
    "REDIS_URL": "redis://127.0.0.1:1/0",
}


@override_settings(**NO_REDIS)
def test_ping_answers_without_the_database_or_redis():
    # A token is looked up in PostgreSQL by every other endpoint; here the
    # header is not even read (no authenticators).
    client = APIClient(HTTP_AUTHORIZATION="Token not-a-real-token")

    response = client.get(PING)

    assert response.status_code == 200
    assert response.json() == {"ok": True}
    assert_matches_schema(response, PING, "GET")


def test_ping_is_in_the_schema_for_anyone_with_no_error_but_busy():
    operation = schema()["paths"][PING]["get"]

    assert operation["x-audience"] == "anyone"
    assert set(operation["responses"]) == {"200", "503"}
