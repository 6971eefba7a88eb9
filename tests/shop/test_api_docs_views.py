"""The schema and its docs pages answer errors as the API does (shop/api_docs.py).

The pages themselves keep their formats (HTML, YAML); tests/shop/test_api_docs.py
checks what they load. Here: their errors are `{code, detail}` in JSON, and
the schema's query parameters cannot make it keep memory or write a header.
"""

import pytest
from django.utils.translation import trans_real
from rest_framework.test import APIClient

pytestmark = pytest.mark.django_db

DOCS_PAGES = ["/api/docs/", "/api/redoc/"]


@pytest.fixture
def client():
    return APIClient(raise_request_exception=False)


def assert_json_error(response, status, code):
    assert response.status_code == status, response.content[:300]
    assert response["Content-Type"] == "application/json"
    assert response.json()["code"] == code
    assert response.json()["detail"]


@pytest.mark.parametrize("page", DOCS_PAGES)
def test_a_docs_page_is_html(client, page):
    response = client.get(page)
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/html")


@pytest.mark.parametrize("page", [*DOCS_PAGES, "/api/schema/"])
def test_an_unknown_format_is_the_json_not_found(client, page):
    assert_json_error(client.get(page, {"format": "nope"}), 404, "not_found")


@pytest.mark.parametrize("page", [*DOCS_PAGES, "/api/schema/"])
def test_a_token_that_is_not_valid_is_the_json_401(client, page):
    response = client.get(page, HTTP_AUTHORIZATION="Token not-a-token")
    assert_json_error(response, 401, "authentication_failed")


def test_the_schema_refuses_a_language_it_does_not_have(client):
    known = set(trans_real._translations)
    response = client.get("/api/schema/", {"lang": "xx-not-a-language"})
    assert_json_error(response, 400, "invalid")
    assert "lang" in response.json()["errors"]
    # Django keeps every language it activates for the life of the process.
    assert "xx-not-a-language" not in set(trans_real._translations) - known


@pytest.mark.parametrize("lang", ["en", "en-us", "de", ""])
def test_the_schema_is_served_in_a_language_of_the_settings(client, lang):
    response = client.get("/api/schema/", {"lang": lang})
    assert response.status_code == 200, response.content[:300]


@pytest.mark.parametrize("version", ["2", "x\r\nX-Injected: 1"])
def test_the_schema_refuses_a_version(client, version):
    # The API has one, in its path; the value went into a response header.
    response = client.get("/api/schema/", {"version": version})
    assert_json_error(response, 400, "invalid")
    assert "X-Injected" not in response
