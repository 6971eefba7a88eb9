"""Request middleware: the admin's database context, and database outages.

The API's views say who is acting in each transaction themselves (the
services and selectors open customer or staff transactions). Django's admin
is not ours to rewrite, so its views run whole inside one staff transaction
instead, the way ATOMIC_REQUESTS would wrap them: row-level security would
otherwise show a staff member no address, cart or order at all.

DRF's views answer a database outage as a 503 through shop/errors.py's
handler. Everything else (the admin, the login pages, any plain Django
view) would reach handler500 and answer 500: DatabaseUnavailableMiddleware
gives them the same 503.

ReadReplicaMiddleware decides once per request where its reads go: the
replica, or the primary (shop/replica.py says why and when).
"""

import logging

from django.conf import settings
from django.db import connections
from django.urls import Resolver404, resolve, reverse

from shop import replica
from shop.db_context import staff_transaction
from shop.errors import unavailable_response

log = logging.getLogger(__name__)

# An admin page runs a handful of short queries; a slow one is a bug.
ADMIN_LOCK_TIMEOUT = "5s"
ADMIN_STATEMENT_TIMEOUT = "30s"


class AdminStaffContextMiddleware:
    """Run an active staff member's admin views in a staff transaction.

    It calls the view itself from process_view, so it must come last in
    MIDDLEWARE: the process_view hooks after it (CSRF's among them, if it
    were later) would be skipped.
    """

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        return self.get_response(request)

    def process_view(self, request, view_func, view_args, view_kwargs):
        if not request.path.startswith(reverse("admin:index")):
            return None
        # Django passes what a process_view raises to no process_exception:
        # the outage gets its 503 here.
        try:
            return self._staff_view(request, view_func, view_args, view_kwargs)
        except Exception as exc:
            response = unavailable_response(exc)
            if response is None:
                raise
            return response

    def _staff_view(self, request, view_func, view_args, view_kwargs):
        user = getattr(request, "user", None)
        # Anyone else gets the admin's login page, which reads no customer row.
        if user is None or not (user.is_active and user.is_staff):
            return None
        with staff_transaction(
            user_id=user.pk,
            lock_timeout=ADMIN_LOCK_TIMEOUT,
            statement_timeout=ADMIN_STATEMENT_TIMEOUT,
        ):
            response = view_func(request, *view_args, **view_kwargs)
            # The admin answers with TemplateResponses, rendered (and their
            # querysets read) only after the view returns: render here, while
            # the staff context is still set.
            if hasattr(response, "render") and callable(response.render):
                response = response.render()
        return response


class DatabaseUnavailableMiddleware:
    """Answer a database outage outside DRF as the API does: 503, not 500.

    The admin's pages and the login forms are HTML for people, but a 503 in
    the API's JSON shape still tells a person what happened, and it tells a
    load balancer or a client's retry logic that trying later may work.
    """

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        return self.get_response(request)

    def process_exception(self, request, exception):
        return unavailable_response(exception)


# Methods that only read (RFC 9110's safe methods that the API serves): a
# request with any other method writes, or may.
READ_METHODS = frozenset({"GET", "HEAD"})


def client_scopes(request) -> list[str]:
    """The read-your-writes scopes of the client behind `request`."""
    scopes = []
    user = getattr(request, "user", None)
    if user is not None and user.is_authenticated:
        scopes.append(f"user:{user.pk}")
    session = getattr(request, "session", None)
    if session is not None and session.session_key:
        scopes.append(f"session:{session.session_key}")
    return scopes


class ReadReplicaMiddleware:
    """Send an anonymous catalog read to the replica, everything else to the primary.

    A request reads the replica when all of these hold; otherwise the
    primary, which is never wrong, only busier:

    - it only reads (GET, HEAD), at a route of REPLICA_READ_ROUTES: data
      that may be a moment old, shown alike to everyone;
    - its client is anonymous: no Authorization header (DRF would look the
      token up, and a token made a moment ago may not be on the replica
      yet) and no logged-in session;
    - its client (user or session) wrote nothing lately
      (shop/replica.py: written_recently). Writes to the catalog by others
      do not move the request: the catalog cache's fills read the primary
      for the entries those writes retired (catalog/cache/reads.py);
    - the replica answers and lags less than REPLICA_MAX_LAG_SECONDS
      (shop/replica.py: replica_status, a verdict kept in the process).

    A read sent to a standby that fails there (the replica stopped since the
    last probe, a query cancelled by a recovery conflict) is answered again
    from the primary: the client sees a slower answer, never the failure.
    It has only read, so running it twice is safe.

    Every request that may write (any other method) marks its client
    (shop/replica.py: mark_written), whatever its status: some error
    answers follow a commit (a declined payment is recorded), and a mark
    too many costs only a few seconds of reads on the primary.
    """

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        if not settings.REPLICA_READS:
            return self.get_response(request)
        alias = replica.REPLICA if self._may_read_replica(request) else replica.PRIMARY
        with replica.request_reads(alias) as reads:
            # The flag is left over from an earlier request when that one
            # failed to connect (Django clears it only on open connections).
            for standby in replica.STANDBYS:
                connections[standby].errors_occurred = False
            response = self.get_response(request)
            failed = self._failed_standby(request, reads, response)
            if failed is not None:
                log.warning(
                    "%s %s failed on the %s alias (status %s); answered again "
                    "from the primary",
                    request.method,
                    request.path,
                    failed,
                    response.status_code,
                )
                replica.replica_failed(f"a request failed on the {failed} alias")
                with replica.reads_from_primary():
                    response = self.get_response(request)
        if request.method not in READ_METHODS:
            replica.mark_written(*client_scopes(request))
        return response

    def _may_read_replica(self, request) -> bool:
        # Cheapest first: the method, the route, the headers and session,
        # then the process's verdict, and only then a round trip to Redis.
        if request.method not in READ_METHODS:
            return False
        try:
            route = resolve(request.path_info).view_name
        except Resolver404:
            return False
        if route not in settings.REPLICA_READ_ROUTES:
            return False
        if "HTTP_AUTHORIZATION" in request.META or request.user.is_authenticated:
            return False
        if not replica.replica_status().usable:
            return False
        # Only the client's own writes move the whole request: a catalog
        # write is the catalog cache's to see, fill by fill, for the entries
        # it retired (catalog/cache/reads.py:_fill_reads).
        return not replica.written_recently(*client_scopes(request))

    def _failed_standby(self, request, reads, response) -> str | None:
        """The standby alias that made this read fail, if one did."""
        if request.method not in READ_METHODS or response.status_code < 500:
            return None
        for alias in sorted(reads.standbys):
            if connections[alias].errors_occurred:
                return alias
        return None
