"""Rate limits on the auth endpoints, counted in the default cache (Redis).

Password guessing is slowed down per client IP address and, for tokens, per
e-mail address tried: many addresses from one machine and one address from
many machines both run into a limit. Over it, DRF raises `Throttled`, which
shop/errors.py renders as 429 {"code": "throttled", ...} with Retry-After.

When Redis does not answer, the attempt cannot be counted, and the endpoint
answers 503 `rate_limit_unavailable` with Retry-After rather than let it
through: unthrottled, registration and sign-in would be open to password
guessing at full speed for as long as Redis is down, and an attacker who can
overload Redis would choose when. Everything else in the API keeps working
without Redis.
"""

import hashlib
import logging
from collections.abc import Mapping

from django.conf import settings
from rest_framework.throttling import SimpleRateThrottle

from shop.cache import CacheUnavailable, counter_hit, counter_ttl
from shop.errors import ServiceUnavailable

log = logging.getLogger(__name__)


class RateLimitUnavailable(ServiceUnavailable):
    """The attempt could not be counted, so it is refused (see above)."""

    code = "rate_limit_unavailable"
    default_detail = (
        "Sign-in and registration are paused: the service that counts attempts "
        "(Redis) is not answering. Try again in a moment."
    )


class AuthRateThrottle(SimpleRateThrottle):
    """A fixed-window counter with one atomic increment per request.

    DRF's own SimpleRateThrottle reads a list of timestamps, appends one and
    writes the list back; concurrent requests all read the same list and all
    but one append are lost, so a client that sends its guesses in parallel is
    hardly counted. shop.cache.counter_hit counts with one atomic increment,
    so every request is counted exactly once.
    """

    # The setting that holds the rate, "N/s", "N/min", "N/hour" or "N/day".
    rate_setting = ""

    def get_rate(self):
        # Read per request, not at import time like DRF's THROTTLE_RATES, so a
        # changed setting (an environment variable, a test's `settings`) holds.
        return getattr(settings, self.rate_setting)

    @classmethod
    def key_for(cls, ident: str) -> str:
        return cls.cache_format % {"scope": cls.scope, "ident": ident}

    def get_ident_value(self, request) -> str | None:
        """What to count by; None: this throttle does not apply to the request."""
        return self.get_ident(request)

    def get_cache_key(self, request, view):
        ident = self.get_ident_value(request)
        return None if ident is None else self.key_for(ident)

    def allow_request(self, request, view):
        if self.rate is None:
            return True
        self.key = self.get_cache_key(request, view)
        if self.key is None:
            return True
        try:
            count = counter_hit(self.key, window=self.duration)
        except CacheUnavailable as exc:
            log.error(
                "%s: cannot count the attempt, answering 503 (%s). Start Redis "
                "(`scripts/services.sh up`) or fix REDIS_URL.",
                self.scope,
                exc,
            )
            raise RateLimitUnavailable() from exc
        return count <= self.num_requests

    def wait(self):
        # Seconds until the window closes; when the cache cannot tell (the
        # local-memory cache, or Redis gone since the count), the whole window.
        remaining = counter_ttl(self.key)
        return remaining if remaining and remaining > 0 else self.duration


def email_digest(email: str) -> str:
    """The address as the token service compares it, hashed.

    Hashing keeps addresses out of the cache's key space and bounds the key's
    length whatever a client sends.
    """
    # surrogatepass: JSON may carry a lone surrogate ("\ud800"), which strict
    # UTF-8 cannot encode; the serializer rejects it once the throttle has run.
    normalized = email.strip().lower().encode("utf-8", "surrogatepass")
    return hashlib.sha256(normalized).hexdigest()


class RegisterIpThrottle(AuthRateThrottle):
    scope = "auth_register_ip"
    rate_setting = "AUTH_RATE_REGISTER"


class TokenIpThrottle(AuthRateThrottle):
    scope = "auth_token_ip"
    rate_setting = "AUTH_RATE_TOKEN"


class TokenEmailThrottle(AuthRateThrottle):
    """Attempts per e-mail address, from any number of IP addresses.

    The trade-off: someone who knows an address can use up its attempts and
    keep its owner from logging in for the rest of the window.
    """

    scope = "auth_token_email"
    rate_setting = "AUTH_RATE_TOKEN_EMAIL"

    def get_ident_value(self, request):
        data = request.data
        email = data.get("email") if isinstance(data, Mapping) else None
        if not isinstance(email, str) or not email.strip():
            return None  # no address to count; the serializer answers 400
        return email_digest(email)


class LoginIpThrottle(TokenIpThrottle):
    """The token endpoint's per-IP counter, for the session login forms.

    Same scope, so the same counter: /api/v1/auth/token/, /admin/login/ and
    /api-auth/login/ all test passwords, and one budget for all three keeps
    a client from tripling its guesses by spreading them over the three.
    """


class LoginEmailThrottle(TokenEmailThrottle):
    """The token endpoint's per-address counter, for the session login forms.

    Django's AuthenticationForm names the address field `username`, whatever
    the user model's USERNAME_FIELD; the forms post it form-encoded.
    """

    def get_ident_value(self, request):
        email = request.POST.get("username")
        if not isinstance(email, str) or not email.strip():
            return None  # no address to count; the form says it is missing
        return email_digest(email)
