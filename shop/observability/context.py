"""The request id and the request of whatever runs now.

Context variables, not thread-locals: a variable set for a request is seen
by everything the request runs in its thread, and each thread (a server's
worker thread, a Celery task) starts from its own context, so one request's
id can never label another's lines.
"""

import re
import uuid
from contextvars import ContextVar

from django.utils.functional import SimpleLazyObject, empty

# An id a client or a proxy sent is taken as it is only if it is a short
# token: it goes into every log line and back into a response header, so
# nothing that could break a line, a header or a JSON reader gets through.
SANE_REQUEST_ID = re.compile(r"[A-Za-z0-9._-]{1,128}")

request_id_var: ContextVar[str | None] = ContextVar("shop_request_id", default=None)
request_var: ContextVar[object | None] = ContextVar("shop_request", default=None)


def request_id_get() -> str | None:
    """The id of the request (or of the request that enqueued the task) now."""
    return request_id_var.get()


def request_id_new() -> str:
    return uuid.uuid4().hex


def request_id_from_header(value: str | None) -> str:
    """The id to use for a request that sent `value` as its X-Request-ID."""
    if value and SANE_REQUEST_ID.fullmatch(value):
        return value
    return request_id_new()


def user_id_get() -> int | None:
    """The id of the user the current request is authenticated as, if known.

    Known means that something already asked: reading `request.user` here
    would look the session up in the database from inside a log call. DRF
    replaces the lazy user with the one its authenticators found (a token
    user included), so after the view ran the answer is there.
    """
    request = request_var.get()
    user = getattr(request, "user", None) if request is not None else None
    if user is None:
        return None
    if isinstance(user, SimpleLazyObject) and user._wrapped is empty:
        return None
    return user.pk if user.is_authenticated else None
