"""Rate limits on registration, tokens and the login forms, in the real cache.

Every test counts under client IPs and e-mail addresses of its own and
deletes those counters afterwards, so neither other tests nor a concurrent
run on the same Redis server are throttled by it.
"""

import threading
import uuid

import pytest
from django.core.cache import cache
from django.test import Client
from rest_framework.parsers import JSONParser
from rest_framework.request import Request
from rest_framework.test import APIRequestFactory

from shop.accounts.api.throttling import (
    RegisterIpThrottle,
    TokenEmailThrottle,
    TokenIpThrottle,
    email_digest,
)
from tests.accounts.factories import UserFactory

pytestmark = pytest.mark.django_db

PASSWORD = "Sh0p-test-pass"  # UserFactory's


class Idents:
    """Fresh client IPs and e-mail addresses, and the cache keys they count under."""

    def __init__(self):
        self.keys = []

    def ip(self) -> str:
        a, b, c = uuid.uuid4().bytes[:3]
        address = f"10.{a}.{b}.{c}"
        self.keys += [
            throttle.key_for(address)
            for throttle in (RegisterIpThrottle, TokenIpThrottle)
        ]
        return address

    def email(self) -> str:
        address = f"throttle-{uuid.uuid4().hex}@example.test"
        self.keys.append(TokenEmailThrottle.key_for(email_digest(address)))
        return address


@pytest.fixture
def idents():
    made = Idents()
    yield made
    cache.delete_many(made.keys)


@pytest.fixture
def rates(settings):
    settings.AUTH_RATE_REGISTER = "3/hour"
    settings.AUTH_RATE_TOKEN = "3/min"
    settings.AUTH_RATE_TOKEN_EMAIL = "2/min"
    return settings


def token(client, ip, email, password="wrong", **headers):
    return client.post(
        "/api/v1/auth/token/",
        {"email": email, "password": password},
        format="json",
        REMOTE_ADDR=ip,
        **headers,
    )


def assert_throttled(response, window):
    assert response.status_code == 429, response.json()
    body = response.json()
    assert body["code"] == "throttled"
    assert "available in" in body["detail"]
    assert 0 < int(response["Retry-After"]) <= window


def test_the_attempt_over_the_per_ip_token_limit_is_a_429_with_retry_after(
    api_client, rates, idents
):
    ip = idents.ip()
    for _ in range(3):
        # A new address each time: only the per-IP limit applies.
        assert token(api_client, ip, idents.email()).status_code == 400

    assert_throttled(token(api_client, ip, idents.email()), window=60)


def test_other_ips_are_not_affected_by_one_ip_over_its_limit(api_client, rates, idents):
    busy, other = idents.ip(), idents.ip()
    for _ in range(4):
        token(api_client, busy, idents.email())

    assert token(api_client, other, idents.email()).status_code == 400


def test_even_the_right_password_waits_once_the_limit_is_reached(
    api_client, rates, idents
):
    user = UserFactory(email=idents.email())
    ip = idents.ip()
    for _ in range(2):
        token(api_client, ip, user.email)

    assert_throttled(token(api_client, ip, user.email, PASSWORD), window=60)


def test_one_email_tried_from_many_ips_is_limited_in_any_spelling(
    api_client, rates, idents
):
    email = idents.email()
    spellings = [email, email.upper(), f"  {email}  "]
    for spelling in spellings[:2]:
        assert token(api_client, idents.ip(), spelling).status_code == 400

    assert_throttled(token(api_client, idents.ip(), spellings[2]), window=60)
    # Another address from a fresh IP still gets its answer.
    assert token(api_client, idents.ip(), idents.email()).status_code == 400


def test_x_forwarded_for_does_not_buy_a_fresh_limit(api_client, rates, idents):
    ip = idents.ip()
    for n in range(3):
        token(api_client, ip, idents.email(), HTTP_X_FORWARDED_FOR=f"192.0.2.{n}")

    response = token(
        api_client, ip, idents.email(), HTTP_X_FORWARDED_FOR="198.51.100.7"
    )

    assert_throttled(response, window=60)


def test_registration_is_limited_per_ip(api_client, rates, idents):
    ip = idents.ip()

    def register():
        body = {"email": idents.email(), "password": "Correct-horse-42"}
        return api_client.post(
            "/api/v1/auth/register/", body, format="json", REMOTE_ADDR=ip
        )

    assert [register().status_code for _ in range(3)] == [201, 201, 201]
    assert_throttled(register(), window=3600)
    other = {"email": idents.email(), "password": "Correct-horse-42"}
    response = api_client.post(
        "/api/v1/auth/register/", other, format="json", REMOTE_ADDR=idents.ip()
    )
    assert response.status_code == 201


def test_the_counter_lives_in_redis_and_expires_with_the_window(
    api_client, rates, idents
):
    if not rates.REDIS_ENABLED:
        pytest.skip("Redis does not answer: the cache is local memory")
    from django_redis import get_redis_connection

    ip, email = idents.ip(), idents.email()
    for _ in range(2):
        token(api_client, ip, email)

    redis = get_redis_connection("default")
    for key in (
        TokenIpThrottle.key_for(ip),
        TokenEmailThrottle.key_for(email_digest(email)),
    ):
        stored = cache.make_key(key)
        assert int(redis.get(stored)) == 2
        assert 0 < redis.ttl(stored) <= 60
    # The address itself is not in the key space, only its digest.
    assert not redis.keys(f"*{email}*")


@pytest.mark.concurrency
def test_concurrent_attempts_are_each_counted(rates, idents):
    """Parallel guesses cannot slip through between a read and a write."""
    ip, attempts = idents.ip(), 12
    barrier = threading.Barrier(attempts)
    allowed = []

    def attempt():
        request = Request(
            APIRequestFactory().post("/api/v1/auth/token/", REMOTE_ADDR=ip),
            parsers=[JSONParser()],
        )
        throttle = TokenIpThrottle()
        barrier.wait()
        allowed.append(throttle.allow_request(request, view=None))

    threads = [threading.Thread(target=attempt) for _ in range(attempts)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert allowed.count(True) == 3


# --- The session login forms: /admin/login/ and /api-auth/login/ -------------
# Both take a password and give a session that the API accepts too, so both
# count on the token endpoint's counters (shop/accounts/login_throttling.py).
# Redis down: tests/shop/test_redis_down.py.

LOGIN_PAGES = ["/admin/login/", "/api-auth/login/"]


def login(page, ip, email, password="wrong"):
    return Client().post(
        page, {"username": email, "password": password}, REMOTE_ADDR=ip
    )


@pytest.mark.parametrize("page", LOGIN_PAGES)
def test_a_login_form_over_the_per_ip_limit_is_a_429_with_retry_after(
    page, rates, idents
):
    ip = idents.ip()
    for _ in range(3):
        # The form again, with its error: a wrong password is a 200.
        assert login(page, ip, idents.email()).status_code == 200

    assert_throttled(login(page, ip, idents.email()), window=60)


@pytest.mark.parametrize("page", LOGIN_PAGES)
def test_one_address_tried_on_a_login_form_from_many_ips_is_limited(
    page, rates, idents
):
    email = idents.email()
    for _ in range(2):
        assert login(page, idents.ip(), email).status_code == 200

    assert_throttled(login(page, idents.ip(), email.upper()), window=60)


@pytest.mark.parametrize("page", LOGIN_PAGES)
def test_a_login_form_refuses_even_the_right_password_over_the_limit(
    page, rates, idents
):
    user = UserFactory(email=idents.email(), is_staff=True)
    ip = idents.ip()
    assert login(page, ip, user.email, PASSWORD).status_code == 302  # logged in
    login(page, ip, user.email)

    assert_throttled(login(page, ip, user.email, PASSWORD), window=60)


def test_the_login_forms_and_the_token_endpoint_share_one_budget(
    api_client, rates, idents
):
    """Spreading guesses over the three ways in buys no more of them."""
    ip, email = idents.ip(), idents.email()
    assert token(api_client, ip, email).status_code == 400
    assert login("/admin/login/", ip, email).status_code == 200

    assert_throttled(login("/api-auth/login/", ip, email), window=60)
    assert_throttled(token(api_client, ip, idents.email()), window=60)


@pytest.mark.parametrize("page", LOGIN_PAGES)
def test_showing_a_login_form_is_not_an_attempt(page, rates, idents):
    ip = idents.ip()
    for _ in range(5):
        assert Client().get(page, REMOTE_ADDR=ip).status_code == 200

    assert login(page, ip, idents.email()).status_code == 200
