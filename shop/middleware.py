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
"""

from django.urls import reverse

from shop.db_context import staff_transaction
from shop.errors import unavailable_response

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
