"""One error shape for the whole API: {"code": "...", "detail": "..."}.

Services raise application errors (ApplicationError and its kinds below),
which know nothing of HTTP; DRF's exceptions, Django's 404, database
outages and unexpected errors all end up here too. This module alone
decides the status, so a client can branch on `code` and show `detail` to a
person.
"""

import sys

from django.core.exceptions import PermissionDenied
from django.db import InterfaceError, OperationalError
from django.http import Http404, JsonResponse
from django.views.decorators.csrf import csrf_exempt
from rest_framework import exceptions, status
from rest_framework.response import Response
from rest_framework.views import exception_handler

from shop.db_retry import BUSY_SQLSTATES, sqlstate


class ApplicationError(Exception):
    """A business rule said no. It knows nothing of HTTP.

    Services raise one of the kinds below with a machine-readable `code`, a
    `detail` for a person and, where useful, `extra` fields for the body
    (the short SKUs, say). `api_exception_handler` turns the kind into a
    status, in this module and nowhere else.
    """

    code = "invalid"
    default_detail = "The request is invalid."

    def __init__(self, detail: str | None = None, *, code: str | None = None, **extra):
        self.detail = detail or self.default_detail
        if code is not None:
            self.code = code
        self.extra = extra
        super().__init__(self.detail)


class InvalidRequest(ApplicationError):
    """The request breaks a rule the client can fix by sending another."""


class NotFound(ApplicationError):
    """The thing asked for does not exist, or is not the caller's to see."""

    code = "not_found"
    default_detail = "This does not exist."


class Conflict(ApplicationError):
    """The request is fine, but the shop's state refuses it right now."""


class PaymentFailed(ApplicationError):
    """The payment gateway refused the charge."""


class Unprocessable(ApplicationError):
    """The request contradicts an earlier one (an idempotency key reused)."""


class ServiceUnavailable(ApplicationError):
    """Something the request needs is not answering; trying later may work."""


# The one place where a kind of application error becomes an HTTP status.
STATUS_OF_KIND = {
    InvalidRequest: status.HTTP_400_BAD_REQUEST,
    NotFound: status.HTTP_404_NOT_FOUND,
    Conflict: status.HTTP_409_CONFLICT,
    PaymentFailed: status.HTTP_402_PAYMENT_REQUIRED,
    Unprocessable: status.HTTP_422_UNPROCESSABLE_ENTITY,
    ServiceUnavailable: status.HTTP_503_SERVICE_UNAVAILABLE,
}


def http_status(error: ApplicationError) -> int:
    """The status `error` answers with (400 for a bare ApplicationError)."""
    for kind in type(error).__mro__:
        if kind in STATUS_OF_KIND:
            return STATUS_OF_KIND[kind]
    return status.HTTP_400_BAD_REQUEST


def error_body(error: ApplicationError) -> dict:
    return {"code": error.code, "detail": str(error.detail), **error.extra}


def error_status_and_body(error: ApplicationError) -> tuple[int, dict]:
    """(status, body) of the response `error` gets.

    Checkout stores the response with its idempotency key, to replay it to a
    retry (the contract); it stores what this function says, so a replay and
    the first answer cannot differ.
    """
    return http_status(error), error_body(error)


def _first_message(detail):
    if isinstance(detail, dict):
        for field, value in detail.items():
            message = _first_message(value)
            if field in ("non_field_errors", "detail"):
                return message
            return f"{field}: {message}"
    if isinstance(detail, list) and detail:
        return _first_message(detail[0])
    return str(detail)


def _busy(exc):
    """Lock timeouts, statement timeouts and exhausted retries: 503, try again."""
    if isinstance(exc, OperationalError) and sqlstate(exc) in BUSY_SQLSTATES:
        return ServiceUnavailable(
            "The shop is busy with this item right now; try again in a moment.",
            code="busy",
            sqlstate=sqlstate(exc),
        )
    return exc


# The server is gone or going: connection exceptions (class 08), shutdowns
# and a server still starting (57P01-57P03). A connection that failed
# without a server answer (refused, reset) has no SQLSTATE at all.
DATABASE_DOWN_SQLSTATES = {"57P01", "57P02", "57P03"}


def database_down(exc):
    """The database does not answer: a 503 that says so, not a 500.

    Return `exc` itself when it is something else. The API's handler below
    and, outside DRF (the admin, the login pages), shop/middleware.py use it.
    """
    if not isinstance(exc, OperationalError | InterfaceError):
        return exc
    state = sqlstate(exc)
    if state is None or state.startswith("08") or state in DATABASE_DOWN_SQLSTATES:
        return ServiceUnavailable(
            "The database is not answering right now; try again in a moment.",
            code="database_unavailable",
            **({"sqlstate": state} if state else {}),
        )
    return exc


def _as_api_exception(exc):
    """Django's Http404 and PermissionDenied as DRF's, so they keep their code.

    DRF's handler converts them only for its own response; without this the
    body said {"code": "error"} for e.g. an unknown ?format= (a 404).
    """
    if isinstance(exc, Http404):
        return exceptions.NotFound(*exc.args)
    if isinstance(exc, PermissionDenied):
        return exceptions.PermissionDenied(*exc.args)
    return exc


def api_exception_handler(exc, context):
    exc = _as_api_exception(database_down(_busy(exc)))
    if isinstance(exc, ApplicationError):
        status_code, body = error_status_and_body(exc)
        headers = {"Retry-After": "1"} if _retry_later(status_code, body) else {}
        return Response(body, status=status_code, headers=headers)
    response = exception_handler(exc, context)
    if response is None:
        return None  # not an API exception: Django's handler500 answers
    if isinstance(exc, exceptions.ValidationError):
        body = {
            "code": "invalid",
            "detail": _first_message(exc.detail),
            "errors": exc.detail,
        }
    else:
        codes = exc.get_codes() if hasattr(exc, "get_codes") else "error"
        code = codes if isinstance(codes, str) else "error"
        body = {"code": code, "detail": _first_message(response.data)}
    headers = _headers(response)
    if _retry_later(response.status_code, body):
        headers.setdefault("Retry-After", "1")
    return Response(body, status=response.status_code, headers=headers)


def _retry_later(status_code: int, body: dict) -> bool:
    """Whether the client should be told when to try again."""
    return status_code == 503 or body.get("code") == "idempotency_key_in_use"


def _headers(response):
    return {
        k: v
        for k, v in response.items()
        if k in ("WWW-Authenticate", "Retry-After", "Allow")
    }


# Exempt: it changes nothing, and without it an unsafe request to an unknown
# API path got Django's HTML "CSRF verification failed" page instead of this.
@csrf_exempt
def not_found(request, exception=None):
    return JsonResponse(
        {"code": "not_found", "detail": "Nothing lives at this address."}, status=404
    )


def unavailable_response(exc) -> JsonResponse | None:
    """The API's 503 for a database that is down or busy, else None.

    For pages outside DRF (the admin, the login forms) and handler500, so a
    database outage is a 503 that says so wherever it surfaces.
    """
    error = database_down(_busy(exc))
    if not isinstance(error, ServiceUnavailable):
        return None
    status, body = error_status_and_body(error)
    return JsonResponse(body, status=status, headers={"Retry-After": "1"})


def server_error(request):
    # Django calls handler500 inside its `except` block: an error raised in
    # a middleware's own hook (the session saved after the view) reaches
    # no process_exception, only this.
    if (response := unavailable_response(sys.exc_info()[1])) is not None:
        return response
    return JsonResponse(
        {
            "code": "server_error",
            "detail": "An unexpected error happened; it has been logged.",
        },
        status=500,
    )


# --- Successful outcomes ---------------------------------------------------
# A service that stores its answer before the response exists (checkout,
# which keeps the response with its idempotency key to replay it) needs the
# status of a success too. It comes from here, beside STATUS_OF_KIND, so
# that one module decides every status the API answers with.
STATUS_OF_SUCCESS = {
    "ok": status.HTTP_200_OK,
    "created": status.HTTP_201_CREATED,
}


def success_status(outcome: str) -> int:
    """The status a successful outcome answers with ("created": 201)."""
    return STATUS_OF_SUCCESS[outcome]
