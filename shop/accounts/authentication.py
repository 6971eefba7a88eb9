"""Token authentication that rejects malformed keys before they reach SQL."""

import re

from rest_framework.authentication import TokenAuthentication
from rest_framework.exceptions import AuthenticationFailed

# DRF's keys are 40 lower-case hex characters (binascii.hexlify of 20 bytes).
TOKEN_KEY = re.compile(r"[0-9a-f]{40}")


class StrictTokenAuthentication(TokenAuthentication):
    def authenticate_credentials(self, key):
        if not TOKEN_KEY.fullmatch(key):
            raise AuthenticationFailed("Invalid token.")
        # DRF's own lookup joins the user only; every customer request then
        # reads its customer in a second query (request.user.customer). The
        # customer is joined here, as a LEFT JOIN: a staff user has none.
        # accounts_customer has no row-level security (chapter 22): it is
        # read here, before any request context exists.
        model = self.get_model()
        try:
            token = model.objects.select_related("user", "user__customer").get(key=key)
        except model.DoesNotExist:
            raise AuthenticationFailed("Invalid token.") from None
        if not token.user.is_active:
            raise AuthenticationFailed("User inactive or deleted.")
        return (token.user, token)
