"""Rate limits on the session login forms: /admin/login/ and /api-auth/login/.

Both take a password, and a session from either one is full access to the
API (SessionAuthentication is on) as well as to the admin. They get the
limits the token endpoint has, on the same counters
(shop/accounts/api/throttling.py): per client IP and per address tried,
429 `throttled` with Retry-After over a limit, and 503
`rate_limit_unavailable` while Redis cannot count, for the reasons given
there.

Both pages are Django's LoginView, not DRF views, so DRF's throttling never
runs for them. A middleware finds them by URL name rather than wrapping
their views in the URLconf: the admin builds its own routes, and a second
route on the same path would have to stay in front of them.
"""

from django.http import JsonResponse
from rest_framework.exceptions import Throttled

from shop.accounts.api.throttling import LoginEmailThrottle, LoginIpThrottle
from shop.errors import ServiceUnavailable, error_status_and_body

# URL names (namespace:name) of the views that check a password.
LOGIN_VIEWS = frozenset({"admin:login", "rest_framework:login"})
# LoginView takes PUT as POST too, but Django parses a form body for POST
# only: a PUT carries no password to check, so only POST is counted.
SUBMIT_METHODS = frozenset({"POST"})


def login_refusal(request) -> JsonResponse | None:
    """The response that refuses this login attempt, or None to let it in.

    Every throttle counts the attempt, even once one has refused it, as the
    API's throttles do: a refused attempt still uses up the budget.
    """
    waits = []
    try:
        for throttle in (LoginIpThrottle(), LoginEmailThrottle()):
            if not throttle.allow_request(request, view=None):
                waits.append(throttle.wait())
    except ServiceUnavailable as exc:  # RateLimitUnavailable: Redis is down
        status, body = error_status_and_body(exc)
        return JsonResponse(body, status=status, headers={"Retry-After": "1"})
    if not waits:
        return None
    throttled = Throttled(wait=max(waits))
    return JsonResponse(
        {"code": "throttled", "detail": str(throttled.detail)},
        status=throttled.status_code,
        headers={"Retry-After": str(int(throttled.wait))},
    )


class LoginRateLimitMiddleware:
    """Count each submission of a login form before its view checks the password.

    Its process_view must run after CSRF's (a forged post tests no password)
    and before the admin's staff context (shop/middleware.py), which calls
    the view itself.
    """

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        return self.get_response(request)

    def process_view(self, request, view_func, view_args, view_kwargs):
        match = request.resolver_match
        if request.method not in SUBMIT_METHODS or match is None:
            return None
        if match.view_name not in LOGIN_VIEWS:
            return None
        return login_refusal(request)
