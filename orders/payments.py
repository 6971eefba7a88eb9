"""A fake payment gateway with the shape of a real one.

`tok_ok` is captured, `tok_declined` (and any other token) is declined.
`PAYMENT_GATEWAY_DELAY` (seconds) makes every call slow, so tests can show
that no row lock is held while the shop waits for the gateway.
"""

import time
import uuid
from dataclasses import dataclass
from decimal import Decimal

from django.conf import settings
from django.db import connections

APPROVED_TOKENS = {"tok_ok"}


class PaymentCalledInTransaction(RuntimeError):
    """A gateway call inside a transaction would hold its locks while it waits."""


@dataclass(frozen=True)
class ChargeResult:
    approved: bool
    reference: str


def charge(*, token: str, amount: Decimal, reference: str) -> ChargeResult:
    """Charge `amount` to the card behind `token`; `reference` makes retries safe."""
    for connection in connections.all(initialized_only=True):
        if connection.in_atomic_block:
            raise PaymentCalledInTransaction(
                f"charge() called inside a transaction on {connection.alias!r}: "
                "finish the transaction first (checkout phase 2 runs outside one)."
            )
    delay = float(getattr(settings, "PAYMENT_GATEWAY_DELAY", 0) or 0)
    if delay:
        time.sleep(delay)
    hook = getattr(settings, "PAYMENT_GATEWAY_HOOK", None)
    if hook is not None:
        hook(token)  # tests: hold a call inside the gateway until they say so
    approved = token in APPROVED_TOKENS
    return ChargeResult(approved=approved, reference=f"fake_{uuid.uuid4().hex[:16]}")
