"""Product search: ranked with ts_rank_cd, matched as the shopper types."""

import pytest

from catalog.selectors import search_query
from tests.catalog.factories import CategoryFactory, ProductFactory, VariantFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def catalogue():
    category = CategoryFactory()

    def product(name, description="A thing."):
        item = ProductFactory(category=category, name=name, description=description)
        VariantFactory(product=item)
        return item

    product("Walnut Desk")
    product("Walnut Desk Lamp")
    product("Oak Desk", description="Pairs well with a walnut shelf.")
    product("Theatre Lamp")
    product("Brass Floor Lamp")
    return product


def names(api_client, query):
    body = api_client.get(f"/api/v1/products/?{query}").json()
    return [p["name"] for p in body["results"]]


def test_a_word_being_typed_matches_as_a_prefix(api_client, catalogue):
    assert set(names(api_client, "search=wal")) == {
        "Walnut Desk",
        "Walnut Desk Lamp",
        "Oak Desk",
    }
    # Every word must match, in the name or in the description.
    assert set(names(api_client, "search=walnut+des")) == {
        "Walnut Desk",
        "Walnut Desk Lamp",
        "Oak Desk",
    }


def test_a_finished_word_matches_as_a_word(api_client, catalogue):
    # "lamps": the English stem, lamp, matches "Lamp"; "wal " (a space
    # after it) is a finished word, and no product has it.
    assert len(names(api_client, "search=lamps")) == 3
    assert names(api_client, "search=wal%20") == []


def test_a_stop_word_being_typed_still_matches_the_words_it_begins(
    api_client, catalogue
):
    assert names(api_client, "search=the") == ["Theatre Lamp"]


def test_too_short_a_beginning_is_matched_as_a_word(api_client, catalogue):
    # Two letters as a prefix would match much of a real catalogue, and
    # every match would have to be ranked.
    assert names(api_client, "search=wa") == []


def test_best_matches_come_first_name_before_description(api_client, catalogue):
    ranked = names(api_client, "search=walnut")
    assert ranked[-1] == "Oak Desk"  # walnut only in its description
    assert set(ranked[:2]) == {"Walnut Desk", "Walnut Desk Lamp"}


def test_another_ordering_still_filters_by_the_search(api_client, catalogue):
    assert names(api_client, "search=walnut&ordering=name") == [
        "Oak Desk",
        "Walnut Desk",
        "Walnut Desk Lamp",
    ]


@pytest.mark.parametrize(
    "text",
    [
        "' OR 1=1 --",
        "lamp & !desk | (oak)",
        "a:* & b",
        "\\'",
        "\u202eexe",
        "Z\u0351\u0358" * 40,
        "!!!",
        "",
        " ",
    ],
)
def test_any_text_is_a_query_never_a_syntax_error(api_client, catalogue, text):
    """Only letters and digits reach the tsquery parser."""
    response = api_client.get("/api/v1/products/", {"search": text})
    assert response.status_code in (200, 400), response.content


def test_no_words_is_a_query_that_matches_nothing():
    query = search_query("!!!")
    assert query.source_expressions[-1].value == ""
