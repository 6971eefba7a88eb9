"""A new Idempotency-Key on every request sqlmap sends with a payload.

Checkout answers a reused key with the stored response (same body) or 422
(another body) before it reads anything else, so with one fixed key every
payload would meet that answer and sqlmap would test nothing. A tamper
script may change headers as well as the payload; this one leaves the
payload alone.
"""

import uuid

from lib.core.enums import PRIORITY

__priority__ = PRIORITY.NORMAL


def dependencies():
    pass


def tamper(payload, **kwargs):
    headers = kwargs.get("headers", {})
    headers["Idempotency-Key"] = str(uuid.uuid4())
    return payload
