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
check and the liveness and readiness probes, the schema and its docs pages,
the browsable API's login and logout, and the JSON 404 for any other /api/
path. `PAGES` lists them, each method apart. `EXCLUDED` names the prefixes
no check walks, each with its reason (Django's admin). `coverage()` walks
every route of the URLconf, and names each route and method that is in none
of the three, so none of them can fall behind the URLconf unnoticed: a new
top-level route (a webhook) fails it until it is a page or excluded with a
reason.

A route's methods are read from its view: a class-based view's handlers
among its http_method_names, a ViewSet's actions. A function view keeps no
record (require_http_methods checks inside a closure), so it counts as
answering every method until PAGES lists it with the methods it serves.

Requests are built from valid values keyed by the input's name, not by
endpoint (`Values`): a body field's dotted path first
("variants.sku"), then its own name ("sku"). A value may be a function of the
operation, for one that must be new on every request (an Idempotency-Key) or
that only the API itself can make (a cursor). An input with no value raises
`MissingValue`, saying where to add one.
"""

import re
from collections.abc import Collection, Iterator, Mapping
from dataclasses import dataclass, field
from functools import cache
from typing import Any
from urllib.parse import quote

from django.urls import URLResolver, get_resolver
from drf_spectacular.generators import EndpointEnumerator, SchemaGenerator
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
    # A page's query parameters sqlmap leaves alone: (name, why) pairs.
    not_attacked: tuple[tuple[str, str], ...] = ()

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
    path: str,
    route: str,
    *,
    methods: tuple[str, ...] = ("GET",),
    query: tuple[str, ...] = (),
    token: bool = False,
    json_errors: bool = True,
    not_attacked: dict[str, str] | None = None,
) -> tuple[Operation, ...]:
    """A page outside the schema, one Operation per method it serves.

    `token`: it reads the Authorization header (a DRF view, or a check for
    staff). `not_attacked`: the query parameters sqlmap leaves alone, each
    with the reason (scripts/security_sqlmap.py attacks the others).
    """
    inputs = tuple(Input(QUERY, name, required=False) for name in query)
    if token:
        inputs += (Input(HEADER, "Authorization", False, credential=True),)
    reasons = tuple((not_attacked or {}).items())
    if unknown := {name for name, _ in reasons} - set(query):
        raise ValueError(f"{path}: not_attacked names no query parameter {unknown}")
    if blank := [name for name, why in reasons if not why.strip()]:
        raise ValueError(f"{path}: say why sqlmap leaves {blank} alone")
    return tuple(
        Operation(
            method,
            path,
            ANYONE,
            inputs,
            route=route,
            json_errors=json_errors,
            not_attacked=reasons,
        )
        for method in methods
    )


# HEAD is GET without the body, and OPTIONS is answered by the framework
# (Django's View, DRF's metadata) alike for every view: neither is walked.
FRAMEWORK_METHODS = {"HEAD", "OPTIONS"}
# The methods a function view counts as answering until PAGES says otherwise.
HTTP_METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE")

DOCS_QUERY_NOT_ATTACKED = (
    "drf-spectacular puts it into the schema's URL in the page and reads it "
    "nowhere else; the schema page is attacked with it"
)

# The routes that are no API operation, and what each answers to.
PAGES = (
    # Its Authorization header asks whether the caller is staff (errors go to
    # staff only): the token lookup every operation shares. It answers any
    # method alike; only GET is walked, because an unsafe method meets the
    # CSRF check before it in production (require_safe would make that a 405).
    *page("/healthz", "healthz", token=True),
    # Liveness and readiness (shop/health.py): anonymous, no details, no
    # token read. Walked with GET only, like /healthz.
    *page("/livez", "livez"),
    *page("/readyz", "readyz"),
    # lang picks the translation the schema is written in (shop/api_docs.py
    # accepts settings.LANGUAGES only); version is refused before anything
    # reads it.
    *page(
        "/api/schema/",
        "api/schema/",
        query=("lang", "version"),
        token=True,
        not_attacked={"version": "refused (400) before any code reads it"},
    ),
    *page(
        "/api/docs/",
        "api/docs/",
        query=("lang", "version"),
        token=True,
        not_attacked=dict.fromkeys(("lang", "version"), DOCS_QUERY_NOT_ATTACKED),
    ),
    *page(
        "/api/redoc/",
        "api/redoc/",
        query=("lang", "version"),
        token=True,
        not_attacked=dict.fromkeys(("lang", "version"), DOCS_QUERY_NOT_ATTACKED),
    ),
    # The browsable API's session login: Django's LoginView (PUT is POST to
    # it, ProcessFormView.put). An HTML form for people, so errors are HTML.
    # Its form body (username, password) is Django's AuthenticationForm and
    # is not varied here: the hostile inputs and sqlmap build JSON bodies.
    *page(
        "/api-auth/login/",
        "api-auth/login/",
        methods=("GET", "POST", "PUT"),
        query=("next",),
        json_errors=False,
        not_attacked={
            "next": "Django's LoginView writes it into the form and checks it "
            "against ALLOWED_HOSTS before redirecting (no query reads it)"
        },
    ),
    *page(
        "/api-auth/logout/",
        "api-auth/logout/",
        methods=("POST",),
        query=("next",),
        json_errors=False,
        not_attacked={
            "next": "Django's LogoutView checks it against ALLOWED_HOSTS "
            "before redirecting (no query reads it)"
        },
    ),
    # The JSON 404 for every other API path, whatever the method (it is
    # CSRF-exempt, so an unsafe method gets the same JSON).
    *page("/api/v1/nowhere/", "^api/", methods=HTTP_METHODS),
)

# Prefixes of routes no check walks, each with the reason. Static files are
# not routes of the URLconf (runserver, or the web server, serves
# STATIC_URL), so they need no entry.
EXCLUDED = {
    "admin/": "Django's own admin: HTML forms for staff behind its own login, "
    "session and CSRF check, not the API. Django tests its views; the shop's "
    "tests open its pages (tests/shop/test_api_shell.py) and check the staff "
    "context it runs in (tests/shop/test_rls.py).",
}


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
    operation: Operation,
    values: Values,
    *,
    optional_query: bool = False,
    leave_out: Collection[str] = (),
) -> Request:
    """The operation called with valid values in every input but credentials.

    Optional query parameters are left out unless `optional_query`: absent is
    as valid as present, and some (a cursor) have no value before a request.
    Those named in `leave_out` are left out even so.
    """
    query, headers = {}, {}
    for inp in operation.inputs_in(QUERY):
        if inp.required or (optional_query and inp.name not in leave_out):
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


def url_routes(urlconf: str | None = None) -> dict[str, tuple[str, ...] | None]:
    """Every route of the URLconf, with the methods its view answers.

    None for a function view, which keeps no record of them. Where two
    patterns have the same route, the first one answers (Django resolves
    in order).
    """
    routes = {}
    for route, callback in _walk(get_resolver(urlconf)):
        routes.setdefault(route, view_methods(callback))
    return routes


def view_methods(callback) -> tuple[str, ...] | None:
    """The methods a view answers but HEAD and OPTIONS; None for a function view.

    A class-based view answers those of its http_method_names (as_view's
    included) it has a handler for; a ViewSet those its router bound to
    actions, which are handlers only once the view is made.
    """
    view_class = getattr(callback, "cls", None) or getattr(callback, "view_class", None)
    if view_class is None:
        return None
    # DRF's as_view records its arguments as `initkwargs`, Django's as
    # `view_initkwargs`.
    initkwargs = (
        getattr(callback, "initkwargs", None)
        or getattr(callback, "view_initkwargs", None)
        or {}
    )
    names = initkwargs.get("http_method_names", view_class.http_method_names)
    actions = getattr(callback, "actions", None)
    if actions is not None:
        served = set(actions)
    else:
        served = {name for name in names if hasattr(view_class, name)}
    methods = (name.upper() for name in names if name in served)
    return tuple(m for m in methods if m not in FRAMEWORK_METHODS)


def _walk(resolver, prefix="", *, names=False) -> Iterator[tuple[str, Any]]:
    """(route, callback) of every URL pattern; (route, name) with `names`."""
    for pattern in resolver.url_patterns:
        route = prefix + str(pattern.pattern)
        if isinstance(pattern, URLResolver):
            yield from _walk(pattern, route, names=names)
        else:
            yield route, pattern.name if names else pattern.callback


def route_names(urlconf: str | None = None) -> dict[str, str]:
    """The URL name of each path, as the schema writes it ("product-list")."""
    return {
        route_path(route): name
        for route, name in _walk(get_resolver(urlconf), names=True)
        if name
    }


def route_path(route: str) -> str:
    """A URLconf route as the schema writes its path: <int:order_id> -> {order_id}.

    drf-spectacular's own conversion, so a regex route (a router's
    "^widgets/(?P<pk>[^/.]+)/$") comes out as it does in the schema.
    """
    return _ENUMERATOR.get_path_from_regex(route)


_ENUMERATOR = EndpointEnumerator(patterns=())


def _schema_key(path: str) -> str:
    """A path with its parameters unnamed: the schema may rename {pk} to {id}."""
    return re.sub(r"\{[^}]*\}", "{}", path)


@dataclass
class Coverage:
    """What the URLconf serves that no check accounts for, and stale entries."""

    missing: list[tuple[str, str]] = field(default_factory=list)  # (route, method)
    stale: list[str] = field(default_factory=list)  # PAGES for no route or method
    unused_exclusions: list[str] = field(default_factory=list)  # EXCLUDED prefixes


def coverage(
    schema_operations: list[Operation] | None = None,
    pages: tuple[Operation, ...] = PAGES,
    urlconf: str | None = None,
    excluded: Mapping[str, str] = EXCLUDED,
) -> Coverage:
    """Compare every route of the URLconf with the schema, `pages` and `excluded`."""
    if schema_operations is None:
        schema_operations = operations()
    routes = url_routes(urlconf)
    in_schema = {(_schema_key(o.path), o.method) for o in schema_operations}
    listed = {(p.route, p.method) for p in pages}
    found = Coverage()
    used = set()
    for route, methods in routes.items():
        prefix = next((p for p in excluded if route.lstrip("^").startswith(p)), None)
        if prefix is not None:
            used.add(prefix)
            continue
        if methods is None:
            # A function view answers what PAGES says it does, or anything.
            methods = tuple(m for r, m in listed if r == route) or HTTP_METHODS
        key = _schema_key(route_path(route))
        found.missing += [
            (route, method)
            for method in methods
            if (key, method) not in in_schema and (route, method) not in listed
        ]
        found.stale += [
            f"{method} {route}"
            for r, method in sorted(listed)
            if r == route and method not in methods
        ]
    found.missing.sort()
    found.stale += sorted(f"{m} {r}" for r, m in listed if r not in routes)
    found.unused_exclusions = sorted(set(excluded) - used)
    return found
