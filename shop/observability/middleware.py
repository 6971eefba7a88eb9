"""X-Request-ID in and out, and one access line per request.

The id comes from the client or the proxy in front (X-Request-ID) when it is
a sane token, or is made here; it is set for the whole request
(shop/observability/context.py), so every log line of the request carries
it, and so does every Celery task the request enqueues
(shop/observability/task_context.py). The response returns it, so a client
that reports a problem can quote it.

The access line says what a request cost the database: how many statements
it ran, on every alias, and how long they took.
"""

import logging
import time

from shop.observability.context import (
    request_id_from_header,
    request_id_var,
    request_var,
)
from shop.observability.sql_count import sql_counted

REQUEST_ID_HEADER = "X-Request-ID"
access_log = logging.getLogger("shop.access")

# Load balancers and orchestrators call these every few seconds: an answer
# that says "up" is not worth a line at INFO each time.
PROBE_PATHS = frozenset({"/livez", "/readyz", "/healthz"})


class RequestIdMiddleware:
    """Give each request an id, count its SQL, and log it when it is done.

    First in MIDDLEWARE: the id then labels the lines of every middleware
    after it, and the duration covers them too.
    """

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        request_id = request_id_from_header(request.headers.get(REQUEST_ID_HEADER))
        request.request_id = request_id
        id_token = request_id_var.set(request_id)
        request_token = request_var.set(request)
        started = time.perf_counter()
        try:
            with sql_counted() as sql:
                response = self.get_response(request)
            response[REQUEST_ID_HEADER] = request_id
            self._log(request, response, started, sql)
            return response
        finally:
            request_var.reset(request_token)
            request_id_var.reset(id_token)

    def _log(self, request, response, started, sql):
        status = response.status_code
        quiet = request.path in PROBE_PATHS and status < 400
        # The path without its query string: a query string may carry an
        # e-mail address or a search a customer would rather keep.
        access_log.log(
            logging.DEBUG if quiet else logging.INFO,
            "%s %s %s",
            request.method,
            request.path,
            status,
            extra={
                "method": request.method,
                "path": request.path,
                "status": status,
                "duration_ms": round((time.perf_counter() - started) * 1000, 2),
                "sql_count": sql.count,
                "sql_ms": round(sql.seconds * 1000, 2),
            },
        )
