"""Registration and tokens per the contract."""

import pytest
from rest_framework.test import APIClient

from shop.accounts.models import Customer, User

pytestmark = pytest.mark.django_db

GOOD_PASSWORD = "Correct-horse-42"


def register(client, email, password=GOOD_PASSWORD):
    return client.post(
        "/api/v1/auth/register/", {"email": email, "password": password}, format="json"
    )


def test_register_creates_a_user_and_a_customer(api_client):
    response = register(api_client, "Ann@Example.test")

    assert response.status_code == 201
    assert response.json() == {"id": response.json()["id"], "email": "ann@example.test"}
    user = User.objects.get(email="ann@example.test")
    assert Customer.objects.filter(user=user).exists()
    assert user.password != GOOD_PASSWORD  # hashed


def test_a_duplicate_email_in_any_case_is_a_400(api_client):
    register(api_client, "ann@example.test")

    response = register(api_client, "ANN@example.test")

    assert response.status_code == 400
    assert response.json()["code"] == "email_taken"
    assert User.objects.filter(email="ann@example.test").count() == 1


@pytest.mark.parametrize(
    "body, code",
    [
        ({"email": "not-an-email", "password": GOOD_PASSWORD}, "invalid"),
        ({"email": "a@example.test"}, "invalid"),
        ({"email": "a@example.test", "password": "x"}, "weak_password"),
        ({"email": "a@example.test", "password": "password"}, "weak_password"),
        ({"email": "a@example.test", "password": "12345678901"}, "weak_password"),
        ({}, "invalid"),
        ([], "invalid"),
    ],
)
def test_bad_registrations_are_4xx_with_code_and_detail(api_client, body, code):
    response = api_client.post("/api/v1/auth/register/", body, format="json")

    assert response.status_code == 400
    assert response.json()["code"] == code
    assert response.json()["detail"]
    assert not User.objects.exists()


def test_malformed_json_is_a_400_not_a_500(api_client):
    response = api_client.post(
        "/api/v1/auth/register/", "{not json", content_type="application/json"
    )
    assert response.status_code == 400
    assert response.json()["code"] == "parse_error"


def test_token_for_good_credentials_authenticates_later_requests(api_client):
    register(api_client, "ann@example.test")

    response = api_client.post(
        "/api/v1/auth/token/",
        {"email": "Ann@example.test", "password": GOOD_PASSWORD},
        format="json",
    )

    assert response.status_code == 200
    token = response.json()["token"]
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {token}")
    # A customer at a staff endpoint is authenticated but forbidden: 403, not 401.
    assert client.get("/api/v1/stock/ANY/").status_code == 403


def test_the_same_user_gets_the_same_token(api_client):
    register(api_client, "ann@example.test")
    body = {"email": "ann@example.test", "password": GOOD_PASSWORD}
    first = api_client.post("/api/v1/auth/token/", body, format="json").json()["token"]
    second = api_client.post("/api/v1/auth/token/", body, format="json").json()["token"]
    assert first == second


@pytest.mark.parametrize(
    "body",
    [
        {"email": "ann@example.test", "password": "wrong"},
        {"email": "nobody@example.test", "password": GOOD_PASSWORD},
    ],
)
def test_bad_credentials_are_a_400_that_does_not_say_which_part_was_wrong(
    api_client, body
):
    register(api_client, "ann@example.test")
    response = api_client.post("/api/v1/auth/token/", body, format="json")
    assert response.status_code == 400
    assert response.json()["code"] == "invalid_credentials"


def test_a_bad_token_is_a_401(api_client):
    api_client.credentials(HTTP_AUTHORIZATION="Token nope")
    response = api_client.get("/api/v1/stock/ANY/")
    assert response.status_code == 401
    assert response.json()["code"] == "authentication_failed"
