"""The one way to open a transaction that touches customer-owned rows.

Every such transaction starts with a *transaction-local* context
(`set_config(name, value, true)`): it vanishes at COMMIT or ROLLBACK, so a
pooled connection handed to the next request can never carry this
customer's identity along. Row-level security policies (chapter 22) read
these settings; until then they label the work for the stock ledger, the
audit trail (shop_audit_log: app.customer_id, app.user_id) and logs.
"""

from contextlib import contextmanager

from django.db import connections, transaction

# A stuck lock fails fast with a clear error instead of hanging a request.
DEFAULT_LOCK_TIMEOUT = "2s"
DEFAULT_STATEMENT_TIMEOUT = "10s"


def set_locals(settings: dict[str, str], *, using: str = "default") -> None:
    """Set several transaction-local settings in one round trip."""
    calls = ", ".join(["set_config(%s, %s, true)"] * len(settings))
    params = [item for pair in settings.items() for item in pair]
    with connections[using].cursor() as cursor:
        cursor.execute(f"SELECT {calls}", params)  # placeholders only, no values


@contextmanager
def _acting_as(
    context: dict[str, str], using, lock_timeout, statement_timeout, user_id=None
):
    settings = dict(context)
    # Left unset when unknown, not set empty: a caller that names no user
    # sends exactly the statement it always sent.
    if user_id is not None:
        settings["app.user_id"] = str(user_id)
    if lock_timeout:
        settings["lock_timeout"] = lock_timeout
    if statement_timeout:
        settings["statement_timeout"] = statement_timeout
    with transaction.atomic(using=using):
        set_locals(settings, using=using)
        yield


def customer_transaction(
    customer_id: int,
    *,
    user_id: int | None = None,
    using: str = "default",
    lock_timeout: str | None = DEFAULT_LOCK_TIMEOUT,
    statement_timeout: str | None = DEFAULT_STATEMENT_TIMEOUT,
):
    """Open a transaction acting for one customer, with bounded lock waits.

    `user_id` (the logged-in user) only labels the audit trail's entries.
    """
    context = {"app.customer_id": str(customer_id), "app.is_staff": "off"}
    return _acting_as(context, using, lock_timeout, statement_timeout, user_id)


def staff_transaction(
    *,
    user_id: int | None = None,
    using: str = "default",
    lock_timeout: str | None = DEFAULT_LOCK_TIMEOUT,
    statement_timeout: str | None = DEFAULT_STATEMENT_TIMEOUT,
):
    """Open a transaction acting as staff (all customers' rows), with bounded waits.

    Explicit, never implied by a missing customer id: a transaction that set
    nothing acts for nobody. `user_id` (the staff member) only labels the
    audit trail's entries.
    """
    context = {"app.customer_id": "", "app.is_staff": "on"}
    return _acting_as(context, using, lock_timeout, statement_timeout, user_id)
