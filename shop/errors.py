"""One error shape for the whole API: {"code": "...", "detail": "..."}.

DRF's exceptions, Django's 404 and unexpected errors all end up here, so a
client can branch on `code` and show `detail` to a person.
"""

from django.core.exceptions import PermissionDenied
from django.http import Http404, JsonResponse
from django.views.decorators.csrf import csrf_exempt
from rest_framework import exceptions, status
from rest_framework.response import Response
from rest_framework.views import exception_handler


class ShopError(exceptions.APIException):
    """A business-rule error with its own code; subclass or instantiate with code."""

    status_code = status.HTTP_400_BAD_REQUEST
    default_code = "invalid"
    default_detail = "The request is invalid."

    def __init__(self, detail=None, code=None, status_code=None, extra=None):
        super().__init__(detail, code)
        self.code = code or self.default_code
        if status_code is not None:
            self.status_code = status_code
        self.extra = extra or {}


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
    from django.db import OperationalError

    from shop.db_retry import BUSY_SQLSTATES, sqlstate

    if isinstance(exc, OperationalError) and sqlstate(exc) in BUSY_SQLSTATES:
        error = ShopError(
            "The shop is busy with this item right now; try again in a moment.",
            code="busy",
            status_code=503,
        )
        error.extra = {"sqlstate": sqlstate(exc)}
        return error
    return exc


# The server is gone or going: connection exceptions (class 08), shutdowns
# and a server still starting (57P01-57P03). A connection that failed
# without a server answer (refused, reset) has no SQLSTATE at all.
DATABASE_DOWN_SQLSTATES = {"57P01", "57P02", "57P03"}


def _database_down(exc):
    """The database does not answer: a 503 that says so, not a 500."""
    from django.db import InterfaceError, OperationalError

    from shop.db_retry import sqlstate

    if not isinstance(exc, OperationalError | InterfaceError):
        return exc
    state = sqlstate(exc)
    if state is None or state.startswith("08") or state in DATABASE_DOWN_SQLSTATES:
        error = ShopError(
            "The database is not answering right now; try again in a moment.",
            code="database_unavailable",
            status_code=503,
        )
        if state:
            error.extra = {"sqlstate": state}
        return error
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
    exc = _as_api_exception(_database_down(_busy(exc)))
    response = exception_handler(exc, context)
    if response is None:
        return None  # not an API exception: Django's handler500 answers
    if isinstance(exc, ShopError):
        body = {"code": exc.code, "detail": str(exc.detail), **exc.extra}
    elif isinstance(exc, exceptions.ValidationError):
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
    if response.status_code == 503 or body.get("code") == "idempotency_key_in_use":
        headers.setdefault("Retry-After", "1")
    return Response(body, status=response.status_code, headers=headers)


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


def server_error(request):
    return JsonResponse(
        {
            "code": "server_error",
            "detail": "An unexpected error happened; it has been logged.",
        },
        status=500,
    )
