"""The OpenAPI schema documents every error an operation can answer.

drf-spectacular documents the success response each view declares. Most
errors, though, come from the same few mechanisms on every view, and which
ones apply follows from the view's own configuration:

    authenticators                  401  no credentials, or a bad token
    a permission other than AllowAny  403  the wrong kind of account
    a session on an unsafe method   403  the CSRF check
    throttles                       429  with Retry-After
    a path parameter, a cursor      404
    a request body                  400, 415
    query parameters                400
    any operation                   503  busy or database_unavailable; rate-
                                         limited ones also rate_limit_unavailable
                                         (shop/errors.py), with Retry-After

`ShopAutoSchema` adds those, all with the one error body
(`{"code", "detail", ...}`, `ErrorOutput`), so a new view is documented by
being built like the others. Errors of business rules (insufficient stock, a
declined payment) are declared on the view with `error_response()`; a status
a view declares itself keeps the view's description.

Each operation also says who may call it, as `x-audience`: `anyone`,
`customer` or `staff`, read from the permission classes of the view (for
that method). A permission class of the shop's own declares it as an
`audience` attribute; DRF's are listed in `DRF_AUDIENCES`. Any other class,
or a view that sets no permissions at all (the default, AllowAny, would
make a forgotten declaration public), makes schema generation fail: a new
kind of permission cannot slip past the tests that derive the permission
matrix, the hostile inputs and the sqlmap targets from the schema
(shop/api_inventory.py).
"""

from django.core.exceptions import ImproperlyConfigured
from drf_spectacular.openapi import AutoSchema
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse
from rest_framework import serializers
from rest_framework.authentication import SessionAuthentication
from rest_framework.permissions import SAFE_METHODS, AllowAny, IsAdminUser


class ErrorOutput(serializers.Serializer):
    """The body of every error (shop/errors.py)."""

    code = serializers.CharField(help_text="Machine-readable, e.g. `not_found`.")
    detail = serializers.CharField(help_text="For a person: what to change.")
    errors = serializers.JSONField(
        required=False, help_text="With code `invalid`: the messages by field."
    )
    skus = serializers.ListField(
        child=serializers.CharField(),
        required=False,
        help_text="The SKUs the error is about (short, taken, off sale).",
    )
    available = serializers.IntegerField(
        required=False, help_text="Units available (`insufficient_stock`)."
    )
    reserved = serializers.IntegerField(
        required=False, help_text="Units reserved (`stock_below_reserved`)."
    )
    sqlstate = serializers.CharField(
        required=False,
        help_text="The database's error code (`busy`, `database_unavailable`).",
    )
    order_id = serializers.IntegerField(
        required=False,
        help_text="The order concerned (`payment_declined`, `payment_pending`, "
        "`checkout_expired`).",
    )


def error_response(description: str) -> OpenApiResponse:
    return OpenApiResponse(response=ErrorOutput, description=description)


MECHANISM_ERRORS = {
    400: "The request is invalid: code `invalid` with `errors` by field, or the "
    "code of the rule it breaks.",
    401: "No credentials, or a token that is not valid: send "
    "`Authorization: Token <token>` (POST /api/v1/auth/token/).",
    403: "Logged in, but this operation is for another kind of account "
    "(customer or staff); or a session request without its CSRF token.",
    404: "Nothing lives at this address: no such id, slug or SKU (or not "
    "yours), or a cursor that is not one this API made.",
    415: "The body is not JSON: send `Content-Type: application/json`.",
    429: "Too many attempts: wait `Retry-After` seconds.",
    503: "`busy`: a row stayed locked past the lock timeout, or a statement "
    "timed out; `database_unavailable`: the database is not answering; or, "
    "on operations with a rate limit, `rate_limit_unavailable`: the store that "
    "counts attempts (Redis) is not answering, so the attempt is refused "
    "rather than let through uncounted. Retry after `Retry-After` seconds.",
}

RETRY_AFTER = OpenApiParameter(
    "Retry-After",
    int,
    OpenApiParameter.HEADER,
    required=True,
    response=[429, 503],
    description="Seconds to wait before trying again.",
)


AUDIENCE_EXTENSION = "x-audience"
ANYONE, CUSTOMER, STAFF = AUDIENCES = ("anyone", "customer", "staff")
# DRF's own classes cannot carry an `audience` attribute.
DRF_AUDIENCES = {AllowAny: ANYONE, IsAdminUser: STAFF}


def permission_audience(permission) -> str:
    """Who `permission` (an instance) lets through, or ImproperlyConfigured."""
    cls = type(permission)
    audience = getattr(cls, "audience", None) or DRF_AUDIENCES.get(cls)
    if audience not in AUDIENCES:
        raise ImproperlyConfigured(
            f"{cls.__module__}.{cls.__qualname__} does not say who it lets "
            f"through: give it an `audience` attribute, one of {AUDIENCES} "
            "(shop/openapi.py:DRF_AUDIENCES for DRF's own classes). A class "
            "that fits none of them needs a new audience here and in the "
            "tests that read it (shop/api_inventory.py)."
        )
    return audience


def view_audience(view) -> str:
    """The one audience all of the view's permissions admit (they are ANDed)."""
    if not _declares_permissions(type(view)):
        # The default (AllowAny) would make a forgotten declaration public.
        raise ImproperlyConfigured(
            f"{type(view).__module__}.{type(view).__qualname__} does not say who "
            "may call it: set permission_classes ([AllowAny] for anyone) or "
            "override get_permissions()."
        )
    audiences = {permission_audience(p) for p in view.get_permissions()} - {ANYONE}
    if len(audiences) > 1:
        raise ImproperlyConfigured(
            f"{type(view).__qualname__} asks for {sorted(audiences)} at once, so "
            "no account can call it: keep one of them."
        )
    return audiences.pop() if audiences else ANYONE


def _declares_permissions(view_class) -> bool:
    for cls in view_class.__mro__:
        if cls.__module__.startswith("rest_framework."):
            return False  # DRF's own classes: the settings' default applies
        if "permission_classes" in vars(cls) or "get_permissions" in vars(cls):
            return True
    return False


class ShopAutoSchema(AutoSchema):
    def get_extensions(self):
        return {
            **super().get_extensions(),
            AUDIENCE_EXTENSION: view_audience(self.view),
        }

    def get_override_parameters(self):
        return [*super().get_override_parameters(), RETRY_AFTER]

    def _get_response_bodies(self, direction="response"):
        # drf-spectacular's one place that builds `responses` (pinned in
        # requirements.txt); get_response_serializers() cannot be extended
        # instead, because @extend_schema(responses=...) replaces it outright.
        responses = super()._get_response_bodies(direction)
        for status in sorted(self.mechanism_error_statuses()):
            responses.setdefault(
                str(status),
                self._get_response_for_code(
                    error_response(MECHANISM_ERRORS[status]), str(status)
                ),
            )
        return dict(sorted(responses.items()))

    def mechanism_error_statuses(self) -> set[int]:
        """The error statuses this operation's view configuration can produce."""
        view = self.view
        statuses = {503}
        authenticators = view.get_authenticators()
        if authenticators:
            statuses.add(401)
        if any(not isinstance(p, AllowAny) for p in view.get_permissions()):
            # Refused: 403 for a user without the right; an anonymous
            # request is the 401 above where an authenticator can ask for
            # credentials, and a 403 too where none can.
            statuses.add(403)
        if self.method not in SAFE_METHODS and any(
            isinstance(a, SessionAuthentication) for a in authenticators
        ):
            statuses.add(403)
        if view.get_throttles():
            statuses.add(429)
        if self.method in ("POST", "PUT", "PATCH") and self.get_request_serializer():
            statuses |= {400, 415}
        paging = {p["name"] for p in self._get_pagination_parameters()}
        cursor = getattr(self._get_paginator(), "cursor_query_param", None)
        if cursor in paging:
            statuses.add(404)  # a cursor this API did not make
        for parameter in self._get_parameters():
            if parameter["in"] == "path":
                statuses.add(404)
            elif parameter["in"] == "query" and parameter["name"] not in paging:
                statuses.add(400)
                if parameter["name"] == "cursor":
                    # A keyset the view pages itself (the event log,
                    # analytics/event_log.py): the same 404 for a cursor this
                    # API did not make.
                    statuses.add(404)
        return statuses
