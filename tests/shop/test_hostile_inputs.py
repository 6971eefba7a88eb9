"""Hostile values in every input of every operation the schema lists.

The operations and their inputs come from the OpenAPI schema
(shop/api_inventory.py), so a new endpoint is attacked here without anyone
writing it down. Each path, query and header parameter (the Authorization
header of every operation that reads one included), each JSON body field
(containers and nested fields too), the whole body and its content type gets
SQL injection strings, NUL bytes, 100k-character strings, awkward Unicode,
numbers out of range and JSON of the wrong type; so do the pages outside the
schema (`PAGES`: the health check, the schema and its docs pages, the
browsable API's login and logout, the JSON 404). The API must answer every
one with a 2xx or a 4xx in the error shape {code, detail} (never a 5xx; the
login and logout pages, Django's HTML forms for people, answer errors in
HTML), and the database must be as it was: no table dropped, the customer's
password unchanged, and no row count of the shop's tables changed but in
the tables the operation writes anyway.

Each hostile request is a valid request with one part replaced. The valid
values are tests/shop/every_operation.py's, keyed by input name (a body
field's dotted path first, "variants.sku", then its own name, "sku"), never
by endpoint; an input with none fails the test and says where to add one.

Rules instead of a list per endpoint:

- What an operation writes is what its valid request writes. That request
  goes first, must get past validation and permissions, and the guarded
  tables whose row counts it changes are the ones hostile requests may
  change too; a safe method (GET) must change none. A hostile value that
  is accepted makes the same kind of write; one that slips into SQL shows as
  a table no valid request touches, or as a table gone.
- Operations that take a `password` (register, token) accept no hostile
  body or field value: the valid body's other values are right, so a 2xx
  would be an account or a login made by a hostile value.
- Unsafe methods run in transactional tests: services that own their
  transactions (shop/db_retry.py:retry_on_conflict, checkout's phases)
  refuse to run inside a test's, and writes commit as in production.
- Before each body case of a customer operation, the customer's cart line
  is put back if an accepted request used it up, so that accepted checkout
  values go all the way into an order.

One test per operation; its failure lists every (input, value) that
misbehaved, not only the first.
"""

import json
from functools import cache
from pathlib import Path
from urllib.parse import quote, urlencode

import pytest
from django.apps import apps
from django.conf import settings
from django.db import connection
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from shop import api_inventory as inventory
from shop.openapi import CUSTOMER
from tests.dbs import ALL_DATABASES, as_staff
from tests.shop.every_operation import PASSWORD, WHERE, valid_inputs

# /healthz reads the replica.
pytestmark = [
    pytest.mark.django_db(databases=["default", "replica"]),
    pytest.mark.usefixtures("event_store_in_process"),
]

SQL_INJECTIONS = [
    "' OR 1=1 --",
    "1; DROP TABLE catalog_product",
    "') UNION SELECT password FROM accounts_user --",
    "%' AND pg_sleep(5) IS NULL --",
]
# As strings: for query strings, paths, headers and JSON string fields.
HOSTILE_TEXT = [
    *SQL_INJECTIONS,
    "\x00",
    "A\x00B",
    "x" * 100_000,
    "\u202eexe.txt\u202c",  # right-to-left override
    "\U0001f6d2\U0001f4a5\U0001f469\u200d\U0001f467",  # emoji, a ZWJ sequence
    "Z\u0351\u0358\u0300\u0301\u0327" * 40,  # stacked combining marks
    "",
    " ",
    str(10**30),
    "-1",
    "1e308",
    "NaN",
    "Infinity",
    "../../etc/passwd",
    "<script>alert(1)</script>",
    "%s%n{0}{{7*7}}",
    # Ends a header line early where a value is copied into a response
    # header (the schema's file name took ?version= so, and was a 500).
    "x\r\nX-Injected: 1",
]
# As raw JSON text, put in place of one field's value.
DEEP_LIST = "[" * 1000 + "]" * 1000
HOSTILE_JSON = [json.dumps(text) for text in HOSTILE_TEXT] + [
    '"\\ud800"',  # a lone surrogate: valid JSON, not encodable as UTF-8
    str(10**30),
    "-1",
    "1e308",
    "-1e308",
    "1e999",  # Python's json reads it as float("inf")
    "NaN",
    "Infinity",
    "0.5",
    "true",
    "null",
    "[]",
    '["a", "b"]',
    "{}",
    '{"$ne": null}',
    DEEP_LIST,
]
# Whole request bodies, sent as application/json.
HOSTILE_BODIES = [
    b"",
    b"{not json",
    b"\x00",
    b"\xff\xfe\xfd",
    b"[]",
    b'[{"sku": "A"}]',
    b'"just a string"',
    b"null",
    b"42",
    b"NaN",
    DEEP_LIST.encode(),
    b'{"a":' * 1000 + b"1" + b"}" * 1000,
    b"x" * 100_000,
]
# DRF reads ?format= on every view to pick a renderer (URL_FORMAT_OVERRIDE).
EVERY_OPERATION_QUERY = ("format",)
# Body fields that make an operation one that logs in or makes an account.
CREDENTIAL_FIELDS = {"password"}
# What a valid request must not get: its values did not get through.
REFUSED = {401, 403, 404, 405, 415}
SENTINEL = "__hostile__"

OPERATIONS = [*inventory.operations(), *inventory.PAGES]


@pytest.fixture
def inputs():
    return valid_inputs()


def json_with(body, key, raw):
    """`body` as JSON text with the field at `key` replaced by raw JSON."""
    target = body
    for part in key[:-1]:
        target = target[part]
    target[key[-1]] = SENTINEL
    return json.dumps(body).replace(json.dumps(SENTINEL), raw).encode()


def client_kwargs(
    valid,
    authorization,
    *,
    path_values=(),
    query=(),
    headers=(),
    field=None,
    body=None,
    content_type=None,
):
    """APIClient.generic's arguments for the `valid` request, one part replaced."""
    path = inventory.fill_path(
        valid.operation.path, valid.path_values | dict(path_values)
    )
    all_headers = {"Authorization": authorization, **valid.headers, **dict(headers)}
    if field is not None:
        body = json_with(valid.body, *field)
    elif body is None and valid.body is not None:
        body = json.dumps(valid.body).encode()
    return {
        "path": path,
        "data": body or b"",
        "content_type": content_type or valid.content_type,
        "QUERY_STRING": urlencode(valid.query | dict(query), quote_via=quote, safe=""),
        **{
            "HTTP_" + name.upper().replace("-", "_"): value
            for name, value in all_headers.items()
            if value
        },
    }


def hostile_requests(operation, values, authorization):
    """(what was sent, whether it is in the body, kwargs for APIClient.generic)."""
    query_names = [i.name for i in operation.inputs_in(inventory.QUERY)]
    query_names += EVERY_OPERATION_QUERY
    paths = operation.inputs_in(inventory.PATH)
    headers = operation.inputs_in(inventory.HEADER)

    def request(**replaced):
        """A valid request (fresh values made anew) with one part replaced."""
        valid = inventory.valid_request(operation, values)
        return client_kwargs(valid, authorization, **replaced)

    for text in HOSTILE_TEXT:
        shown = repr(text[:40])
        for name in query_names:
            yield f"?{name}={shown}", False, request(query={name: text})
        for inp in paths:
            sent = {inp.name: text}
            yield f"path {inp.name}={shown}", False, request(path_values=sent)
        # A WSGI server hands Django header bytes decoded as Latin-1.
        as_sent = text.encode().decode("latin-1")
        for inp in headers:
            sent = {inp.name: f"Token {as_sent}" if inp.credential else as_sent}
            yield f"header {inp.name}={shown}", False, request(headers=sent)
    for name in query_names:
        kwargs = request()
        twice = "&".join(filter(None, [f"{name}=1&{name}=2", kwargs["QUERY_STRING"]]))
        yield f"?{name} twice", False, kwargs | {"QUERY_STRING": twice}
    if not operation.has_body:
        return
    for inp in operation.inputs_in(inventory.BODY):
        for raw in HOSTILE_JSON:
            field = (inp.key, raw)
            yield f"field {inp.name}={raw[:40]!r}", True, request(field=field)
    for raw in HOSTILE_BODIES:
        yield f"body {raw[:40]!r}", True, request(body=raw)
    for content_type in ("text/plain", "multipart/form-data; boundary=x"):
        yield f"body as {content_type}", True, request(content_type=content_type)


@cache
def guarded_tables():
    """Every table of the shop's own apps, and the tokens' (authtoken_token).

    Row counts that no hostile request may change but where the operation's
    valid request changes them too. The shop's apps are those whose package
    is in the project, so a new app's tables, or a new model's, are guarded
    without a list to edit. Tables a migration made in SQL, with no model
    (the fake gateway's ledger), are found by their app's prefix, but for
    those the app's role may not read: the audit log, which only triggers
    on the tables above write.
    """
    project = Path(settings.BASE_DIR)
    ours = [
        config
        for config in apps.get_app_configs()
        if (project / config.name.split(".")[0]).is_dir()
    ]
    tables = {Token._meta.db_table}
    for config in ours:
        for model in config.get_models(include_auto_created=True):
            if model._meta.managed and not model._meta.proxy:
                tables.add(model._meta.db_table)
    prefixes = tuple(f"{config.label}_" for config in ours)
    with connection.cursor() as cursor:
        for table in connection.introspection.table_names(cursor):
            if table.startswith(prefixes):
                tables.add(table)
        # As for the audit log: what the app's role may not read at all (the
        # outbox's counters, which only shop_outbox_append moves), only the
        # triggers on the tables counted here write.
        readable = set()
        for table in tables:
            quoted = connection.ops.quote_name(table)
            cursor.execute("SELECT has_table_privilege(%s, 'SELECT')", [quoted])
            if cursor.fetchone()[0]:
                readable.add(table)
    return tuple(sorted(readable))


def row_counts():
    # As staff: row-level security would hide every customer's rows, and a
    # count of nothing cannot change.
    with as_staff(), connection.cursor() as cursor:
        counts = {}
        for table in guarded_tables():
            # The name is the catalog's, quoted as an identifier.
            cursor.execute(f"SELECT count(*) FROM {connection.ops.quote_name(table)}")
            counts[table] = cursor.fetchone()[0]
        return counts


def takes_credentials(operation):
    body = {i.field_name for i in operation.inputs_in(inventory.BODY)}
    return bool(body & CREDENTIAL_FIELDS)


def problem(response, operation, in_body):
    """What is wrong with the answer to a hostile request, or None."""
    status = response.status_code
    if status >= 500:
        exc = getattr(response, "exc_info", None)
        cause = repr(exc[1])[:200] if exc else response.content[:200]
        return f"{status}: {cause}"
    if in_body and status < 400 and takes_credentials(operation):
        return f"{status}: a hostile value was accepted: {response.content[:200]}"
    if status >= 400 and operation.json_errors:
        try:
            body = error_body(response)
        except ValueError:
            return f"{status} without a JSON body: {response.content[:200]}"
        if not isinstance(body, dict) or not {"code", "detail"} <= set(body):
            return f"{status} without code and detail: {str(body)[:200]}"
    return None


def refused(response):
    """Why a valid request did not get through to the operation, or None."""
    status = response.status_code
    if status >= 500 or status in REFUSED:
        return f"{status} {response.content[:300]}"
    if status == 400 and error_body(response).get("code") == "invalid":
        return f"400 {response.content[:300]}"
    return None


def error_body(response):
    return response.json()


def operation_case(operation):
    marks = []
    if not operation.safe:
        marks = [pytest.mark.django_db(transaction=True, databases=ALL_DATABASES)]
    return pytest.param(operation, marks=marks, id=operation.label)


@pytest.mark.parametrize("operation", [operation_case(op) for op in OPERATIONS])
def test_hostile_values_never_cause_a_5xx_or_harm_the_database(operation, inputs):
    values, auth = inputs.values, inputs.auth
    # Logged in by the Authorization header each request sends (a hostile one
    # included), never by APIClient.credentials(), which would override it.
    client = APIClient(raise_request_exception=False)
    authorization = auth.get(operation.audience, "")
    refills = operation.audience == CUSTOMER and operation.has_body

    before = row_counts()
    valid = inventory.valid_request(operation, values)
    response = client.generic(operation.method, **client_kwargs(valid, authorization))
    # Pages have no values to get wrong; the JSON 404 is a 404 by design.
    assert not operation.in_schema or (why := refused(response)) is None, (
        f"The valid request {operation.label} was refused: {why}. Fix its values "
        f"in {WHERE}."
    )
    writes = {t for t, n in row_counts().items() if n != before[t]}
    assert not (operation.safe and writes), f"{operation.label} changed {writes}"

    failures = []
    for sent, in_body, kwargs in hostile_requests(operation, values, authorization):
        if refills and in_body:
            inputs.refill_cart()
        response = client.generic(operation.method, **kwargs)
        if (why := problem(response, operation, in_body)) is not None:
            failures.append(f"{operation.label} {sent}: {why}")

    assert not failures, f"{len(failures)} bad answers:\n" + "\n".join(failures[:40])
    with connection.cursor() as cursor:
        cursor.execute("SELECT to_regclass('catalog_product')")
        assert cursor.fetchone()[0] is not None, "catalog_product is gone"
    after = row_counts()
    changed = {t for t in after if after[t] != before[t]}
    assert changed <= writes, (
        f"Hostile requests changed the row counts of {sorted(changed - writes)}, "
        f"which the valid request does not: {before} -> {after}"
    )
    user = inputs.customer.user
    user.refresh_from_db()
    assert user.check_password(PASSWORD), "the customer's password changed"
