"""Every operation the API serves, with its inputs and audience: one inventory.

Three checks need the whole list of endpoints: who may call each one
(tests/shop/test_permissions.py), what hostile values in each input do
(tests/shop/test_hostile_inputs.py) and whether sqlmap can inject into one
(scripts/security_sqlmap.py). All three read `operations()`, a walk over the
OpenAPI schema that drf-spectacular builds from the views themselves, with
the audience shop/openapi.py adds to each operation. A new view is in the
schema by being in the URLconf, so it is in all three checks without
anyone editing a list.

Outside the schema are a few pages that are not API operations: the health
check, the schema and its docs pages, and the JSON 404 for any other /api/
path. `PAGES` lists them, and `coverage()` names every route under /api/
or /healthz that is in neither, so the list cannot fall behind the URLconf
unnoticed.

Requests are built from valid values keyed by the input's name, not by
endpoint (`Values`): a body field's dotted path first
("variants.sku"), then its own name ("sku"). A value may be a function of the
operation, for one that must be new on every request (an Idempotency-Key) or
that only the API itself can make (a cursor). An input with no value raises
`MissingValue`, saying where to add one.
"""

import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from functools import cache
from typing import Any
from urllib.parse import quote

from django.urls import URLResolver, get_resolver
from drf_spectacular.generators import SchemaGenerator
from rest_framework.permissions import SAFE_METHODS

from shop.openapi import ANYONE, AUDIENCE_EXTENSION

PATH, QUERY, HEADER, BODY = "path", "query", "header", "body"
JSON = "application/json"


@dataclass(frozen=True)
class Input:
    """One value a request carries: a parameter, a body field or a credential."""

    location: str  # PATH, QUERY, HEADER or BODY
    name: str  # a body field's dotted path: "shipping_address.line1"
    required: bool = True
    type: str = "string"  # a body field's JSON type: containers are inputs too
    key: tuple = ()  # a body field's place in the JSON: ("variants", 0, "sku")
    # The header of a security scheme (Authorization): its value comes with
    # the account a request is made as, not from the values.
    credential: bool = False

    @property
    def field_name(self) -> str:
        """The name without its container's: "line1", "parts" for "parts[]"."""
        return self.name.rsplit(".", 1)[-1].removesuffix("[]")

    @property
    def container(self) -> bool:
        return self.type in ("object", "array")


@dataclass(frozen=True)
class Operation:
    """One method on one path, as the schema (or PAGES) describes it."""

    method: str
    path: str  # "/api/v1/products/{slug}/"
    audience: str  # shop/openapi.py:AUDIENCES
    inputs: tuple[Input, ...] = ()
    has_body: bool = False
    statuses: frozenset[int] = frozenset()  # the documented responses
    # A page outside the schema: the URLconf route it stands for.
    route: str | None = None
    # Errors in the API's JSON shape {code, detail}; not so a page for people.
    json_errors: bool = True

    @property
    def label(self) -> str:
        return f"{self.method} {self.path}"

    @property
    def safe(self) -> bool:
        return self.method in SAFE_METHODS

    @property
    def in_schema(self) -> bool:
        return self.route is None

    @property
    def anonymous_refusal(self) -> int:
        """What an anonymous caller gets where the audience is not `anyone`.

        401 where an authenticator can ask for credentials (the schema
        documents it, shop/openapi.py), else 403.
        """
        return 401 if 401 in self.statuses else 403

    def inputs_in(self, *locations: str) -> list[Input]:
        return [i for i in self.inputs if i.location in locations]


def page(
    path: str, route: str, *, query: tuple[str, ...] = (), html: bool = False
) -> Operation:
    inputs = tuple(Input(QUERY, name, required=False) for name in query)
    return Operation("GET", path, ANYONE, inputs, route=route, json_errors=not html)


# Routes under /api/ and /healthz that are not API operations.
PAGES = (
    page("/healthz", "healthz"),
    page("/api/schema/", "api/schema/", query=("lang",)),
    page("/api/docs/", "api/docs/", html=True),
    page("/api/redoc/", "api/redoc/", html=True),
    # The JSON 404 for every other API path.
    page("/api/v1/nowhere/", "^api/"),
)


@cache
def api_schema() -> dict:
    """The schema /api/schema/ serves, generated once per process."""
    return generate_schema()


def generate_schema() -> dict:
    """The schema of the URLconf in effect now (override_settings included)."""
    return SchemaGenerator().get_schema(request=None, public=True)


def operations(schema: dict | None = None) -> list[Operation]:
    """Every operation in the schema, in its order (by path, GET first)."""
    schema = api_schema() if schema is None else schema
    walker = _SchemaWalker(schema)
    return [
        walker.operation(method.upper(), path, operation)
        for path, item in schema["paths"].items()
        for method, operation in item.items()
    ]


class _SchemaWalker:
    def __init__(self, schema: dict):
        self.schema = schema
        self.schemes = schema.get("components", {}).get("securitySchemes", {})

    def operation(self, method: str, path: str, operation: dict) -> Operation:
        audience = operation.get(AUDIENCE_EXTENSION)
        if audience is None:
            raise ValueError(
                f"{method} {path} has no {AUDIENCE_EXTENSION}: is "
                "shop/openapi.py:ShopAutoSchema the DEFAULT_SCHEMA_CLASS?"
            )
        inputs = [
            Input(p["in"], p["name"], required=p.get("required", False))
            for p in operation.get("parameters", ())
        ]
        inputs += self.credentials(operation)
        body = operation.get("requestBody")
        if body is not None:
            content = body.get("content", {})
            if JSON not in content:
                raise ValueError(
                    f"{method} {path} takes {sorted(content)}, not {JSON}: "
                    "shop/api_inventory.py builds JSON bodies only."
                )
            root = self.resolve(content[JSON]["schema"])
            if "properties" not in root:
                raise ValueError(f"{method} {path}: the body is not a JSON object.")
            inputs += self.fields(root, (), method, path)
        return Operation(
            method,
            path,
            audience,
            tuple(inputs),
            has_body=body is not None,
            statuses=frozenset(int(s) for s in operation["responses"]),
        )

    def credentials(self, operation: dict) -> list[Input]:
        """The header of each security scheme the operation accepts."""
        requirements = operation.get("security", ())
        headers = []
        for requirement in requirements:
            for name in requirement:
                scheme = self.schemes[name]
                if scheme.get("type") == "http" or scheme.get("in") == "header":
                    header = scheme.get("name", "Authorization")
                    if header not in headers:
                        headers.append(header)
        # An empty requirement: calls without credentials are allowed too.
        required = {} not in requirements
        return [Input(HEADER, h, required, credential=True) for h in headers]

    def fields(self, node: dict, key: tuple, method: str, path: str):
        """Every field of an object schema, members after their container."""
        required = set(node.get("required", ()))
        for name, member in node["properties"].items():
            member = self.resolve(member)
            if member.get("readOnly"):
                continue
            yield from self.field(member, (*key, name), name in required, method, path)

    def field(self, node: dict, key: tuple, required: bool, method: str, path: str):
        kind = node.get("type") or ("object" if "properties" in node else None)
        # A list's item is "variants[]"; the item's fields "variants.sku".
        name = ".".join(k for k in key if not isinstance(k, int))
        name += "[]" if isinstance(key[-1], int) else ""
        if kind is None:
            raise ValueError(
                f"{method} {path}: field {name!r} has no plain JSON type "
                f"({sorted(node)}); shop/api_inventory.py cannot build a value."
            )
        yield Input(BODY, name, required, kind, key)
        if kind == "object" and "properties" in node:
            yield from self.fields(node, key, method, path)
        elif kind == "array":
            yield from self.field(
                self.resolve(node["items"]), (*key, 0), True, method, path
            )

    def resolve(self, node: dict) -> dict:
        while "$ref" in node:
            target = self.schema
            for part in node["$ref"].removeprefix("#/").split("/"):
                target = target[part]
            node = target
        return node


class MissingValue(LookupError):
    pass


class Values(dict):
    """Valid input values by name; `where` is where a missing one belongs."""

    def __init__(self, where: str, values: Mapping[str, Any]):
        super().__init__(values)
        self.where = where

    def value(self, inp: Input, operation: Operation) -> Any:
        for name in (inp.name, inp.field_name):
            if name in self:
                value = self[name]
                return value(operation) if callable(value) else value
        also = f" (or {inp.name!r}, for this field only)" if "." in inp.name else ""
        raise MissingValue(
            f"No valid value for the {inp.location} input {inp.name!r} of "
            f"{operation.label}: add one under {inp.field_name!r}{also} to "
            f"{self.where}."
        )


@dataclass
class Request:
    """A valid request to an operation; the hostile checks change one part."""

    operation: Operation
    path_values: dict[str, str]
    query: dict[str, str]
    headers: dict[str, str]
    body: Any = None
    content_type: str = JSON

    @property
    def path(self) -> str:
        return fill_path(self.operation.path, self.path_values)


def valid_request(
    operation: Operation, values: Values, *, optional_query: bool = False
) -> Request:
    """The operation called with valid values in every input but credentials.

    Optional query parameters are left out unless `optional_query`: absent is
    as valid as present, and some (a cursor) have no value before a request.
    """
    query, headers = {}, {}
    for inp in operation.inputs_in(QUERY):
        if inp.required or optional_query:
            query[inp.name] = _as_text(values.value(inp, operation))
    for inp in operation.inputs_in(HEADER):
        if not inp.credential:
            headers[inp.name] = _as_text(values.value(inp, operation))
    body = None
    if operation.has_body:
        body = {}
        for inp in operation.inputs_in(BODY):
            value = [] if inp.type == "array" else {} if inp.container else None
            if value is None:
                value = values.value(inp, operation)
            place_in(body, inp.key, value)
    return Request(operation, _path_values(operation, values), query, headers, body)


def path_for(operation: Operation, values: Values) -> str:
    """The operation's path with valid values for its path parameters."""
    return fill_path(operation.path, _path_values(operation, values))


def _path_values(operation: Operation, values: Values) -> dict[str, str]:
    return {
        inp.name: _as_text(values.value(inp, operation))
        for inp in operation.inputs_in(PATH)
    }


def place_in(body: dict, key: tuple, value: Any) -> None:
    """Put `value` at `key` of a body built in schema order (lists grow by one)."""
    parent = body
    for part in key[:-1]:
        parent = parent[part]
    if isinstance(parent, list):
        parent.append(value)
    else:
        parent[key[-1]] = value


def fill_path(template: str, values: Mapping[str, str]) -> str:
    """`template` with each {name} replaced by its value, percent-encoded."""
    return re.sub(r"\{(\w+)\}", lambda m: quote(values[m.group(1)], safe=""), template)


def _as_text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def url_routes(urlconf: str | None = None) -> set[tuple[str, str]]:
    """Every (route, method) the URLconf serves under /api/ and /healthz."""
    return {
        (route, method)
        for route, callback in _walk(get_resolver(urlconf))
        if route.lstrip("^").startswith("api/") or route.startswith("healthz")
        for method in _methods(callback)
    }


# DRF views answer OPTIONS (and HEAD with GET) themselves, the same for all.
HTTP_METHODS = ("get", "post", "put", "patch", "delete")
# Function views (healthz, the API's 404) declare no methods; GET stands in.
FUNCTION_VIEW_METHODS = ("GET",)


def _walk(resolver, prefix="", *, names=False) -> Iterator[tuple[str, Any]]:
    """(route, callback) of every URL pattern; (route, name) with `names`."""
    for pattern in resolver.url_patterns:
        route = prefix + str(pattern.pattern)
        if isinstance(pattern, URLResolver):
            yield from _walk(pattern, route, names=names)
        else:
            yield route, pattern.name if names else pattern.callback


def _methods(callback) -> tuple[str, ...]:
    view_class = getattr(callback, "view_class", None)
    if view_class is None:
        return FUNCTION_VIEW_METHODS
    return tuple(m.upper() for m in HTTP_METHODS if hasattr(view_class, m))


def route_names(urlconf: str | None = None) -> dict[str, str]:
    """The URL name of each path, as the schema writes it ("product-list")."""
    return {
        route_path(route): name
        for route, name in _walk(get_resolver(urlconf), names=True)
        if name
    }


def route_path(route: str) -> str:
    """A URLconf route as the schema writes its path: <int:order_id> -> {order_id}."""
    return "/" + re.sub(r"<(?:\w+:)?(\w+)>", r"{\1}", route)


@dataclass
class Coverage:
    """Routes that neither the schema nor PAGES accounts for, and stale PAGES."""

    missing: list[tuple[str, str]] = field(default_factory=list)
    stale: list[str] = field(default_factory=list)


def coverage(
    schema_operations: list[Operation] | None = None,
    pages: tuple[Operation, ...] = PAGES,
    urlconf: str | None = None,
) -> Coverage:
    """Compare the URLconf's routes with the schema's operations and `pages`."""
    if schema_operations is None:
        schema_operations = operations()
    routes = url_routes(urlconf)
    in_schema = {(o.path, o.method) for o in schema_operations}
    listed = {(p.route, p.method) for p in pages}
    return Coverage(
        missing=sorted(
            (route, method)
            for route, method in routes
            if (route_path(route), method) not in in_schema
            and (route, method) not in listed
        ),
        stale=sorted(p.route for p in pages if (p.route, p.method) not in routes),
    )
