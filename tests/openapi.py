"""Check a response against the app's own OpenAPI schema, as schemathesis does.

`make security` runs schemathesis against a live server; these helpers let a
regression test pin one response of it in the suite, with jsonschema.
"""

import jsonschema

from shop.api_inventory import api_schema


def schema() -> dict:
    """The schema /api/schema/ serves; the one the API inventory walks too."""
    return api_schema()


def _as_json_schema(node):
    """OpenAPI 3.0's `nullable: true` in JSON Schema terms, recursively."""
    if isinstance(node, list):
        return [_as_json_schema(item) for item in node]
    if not isinstance(node, dict):
        return node
    node = {key: _as_json_schema(value) for key, value in node.items()}
    if node.pop("nullable", False):
        return {"anyOf": [node, {"type": "null"}]}
    return node


def response_schema(path: str, method: str, status: int) -> dict:
    operation = schema()["paths"][path][method.lower()]
    body = operation["responses"][str(status)]["content"]["application/json"]
    return {
        **_as_json_schema(body["schema"]),
        "components": _as_json_schema(schema()["components"]),
    }


def assert_matches_schema(response, path: str, method: str) -> None:
    """The response's status is documented for the operation and its body fits."""
    responses = schema()["paths"][path][method.lower()]["responses"]
    assert str(response.status_code) in responses, (
        f"{method} {path} answered {response.status_code}, "
        f"documented: {sorted(responses)}"
    )
    jsonschema.validate(
        response.json(), response_schema(path, method, response.status_code)
    )
