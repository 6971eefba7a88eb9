"""Idempotency keys for checkout (the contract's semantics).

same key, same body, finished     -> the stored response again
same key, same body, payment not
  settled yet                     -> the provisional response again
same key, other body              -> 422 idempotency_key_reused
same key, first still running     -> 409 idempotency_key_in_use
key purged after the retention    -> a new request like any other
"""

import hashlib
import json
import re
from dataclasses import dataclass
from datetime import timedelta

from django.db import connection
from django.utils import timezone

from orders.models import IdempotencyKey
from shop.db_context import customer_transaction, job_transaction
from shop.errors import Conflict, InvalidRequest, Unprocessable
from shop.sql_files import read_sql

# Printable ASCII, as a UUID is: PostgreSQL text cannot hold NUL (a DataError,
# a 500, before this check existed) and no other control character belongs
# in a key; 255 is the column's length.
KEY_FORMAT = re.compile(r"[\x21-\x7e]{1,255}")
# The purge acts as this background job (row-level security, chapter 22).
PURGE_JOB = "idempotency_key_purge"


@dataclass(frozen=True)
class Replay:
    status: int
    body: dict


@dataclass(frozen=True)
class Claim:
    key_id: int | None
    replay: Replay | None = None


def request_fingerprint(payload) -> str:
    """A stable digest of the request body: same JSON meaning, same digest."""
    canonical = json.dumps(payload, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(canonical.encode()).hexdigest()


def claim(*, customer_id: int, key: str, fingerprint: str) -> Claim:
    """Claim `key` for a new checkout, or return the finished response to replay."""
    if not KEY_FORMAT.fullmatch(key):
        raise InvalidRequest(
            "An Idempotency-Key is 1 to 255 printable ASCII characters "
            "(a UUID is a good choice).",
            code="invalid_idempotency_key",
        )
    params = {"customer_id": customer_id, "key": key, "fingerprint": fingerprint}
    # Twice at most: the key may vanish between the INSERT that found it and
    # the SELECT that reads it (a failed request releasing it, or recovery).
    for _ in range(2):
        with customer_transaction(customer_id):
            with connection.cursor() as cursor:
                cursor.execute(
                    read_sql("orders/sql/queries/idempotency_claim_v01.sql"), params
                )
                row = cursor.fetchone()
            if row:
                return Claim(key_id=row[0])
            existing = IdempotencyKey.objects.filter(
                customer_id=customer_id, key=key
            ).first()
        if existing is not None:
            return _answer(existing, fingerprint)
    raise Conflict(
        "This Idempotency-Key is changing hands right now; retry in a moment.",
        code="idempotency_key_in_use",
    )


def _answer(existing: IdempotencyKey, fingerprint: str) -> Claim:
    if existing.request_fingerprint != fingerprint:
        raise Unprocessable(
            "This Idempotency-Key was already used with a different request body; "
            "use a new key for a new request.",
            code="idempotency_key_reused",
        )
    if (
        existing.status == IdempotencyKey.Status.IN_PROGRESS
        and existing.response_body is None
    ):
        raise Conflict(
            "A request with this Idempotency-Key is still being processed; "
            "retry in a moment to get its result.",
            code="idempotency_key_in_use",
        )
    return Claim(
        key_id=existing.pk,
        replay=Replay(status=existing.response_status, body=existing.response_body),
    )


def link_order(*, key_id: int, order_id: int) -> None:
    IdempotencyKey.objects.filter(pk=key_id).update(order_id=order_id)


def complete(*, customer_id: int, key_id: int, status: int, body: dict) -> None:
    """Store the final response; later requests with the key replay it.

    Inside checkout's phase 3 it joins that transaction, so the order's
    outcome and the stored response commit together or not at all.
    """

    def store():
        IdempotencyKey.objects.filter(pk=key_id).update(
            status=IdempotencyKey.Status.COMPLETED,
            response_status=status,
            response_body=body,
            updated_at=timezone.now(),
        )

    if connection.in_atomic_block:
        store()
    else:
        with customer_transaction(customer_id):
            store()


def answer_provisionally(*, key_id: int, status: int, body: dict) -> None:
    """Store an answer to replay while the key's checkout is still unsettled.

    For a payment whose outcome is unknown: the key stays in progress, so
    recovery still completes it (paid) or frees it (released), and until
    then a retry gets this answer instead of charging again. Runs in the
    caller's transaction (checkout's phase 3).
    """
    IdempotencyKey.objects.filter(
        pk=key_id, status=IdempotencyKey.Status.IN_PROGRESS
    ).update(response_status=status, response_body=body)


def release(*, customer_id: int, key_id: int) -> None:
    """Forget a claim whose request failed unexpectedly, so a retry can run."""
    with customer_transaction(customer_id):
        IdempotencyKey.objects.filter(
            pk=key_id, status=IdempotencyKey.Status.IN_PROGRESS
        ).delete()


def idempotency_key_purge(
    *, older_than: timedelta, batch_size: int = 1000, max_batches: int = 100
) -> int:
    """Delete completed keys older than `older_than`, in batches; return how many.

    Each batch is a short transaction of its own, so the purge never holds
    many row locks or one long snapshot, and a large backlog is worked off
    across runs: at most `max_batches` batches per call. Keys still in
    progress are left to checkout and recovery. A client that retries
    with a purged key makes a new request.
    """
    if connection.in_atomic_block:
        raise RuntimeError(
            "idempotency_key_purge commits per batch: call it outside atomic(), "
            "or every batch becomes part of one long transaction."
        )
    cutoff = timezone.now() - older_than
    purged = 0
    for _ in range(max_batches):
        with job_transaction(PURGE_JOB), connection.cursor() as cursor:
            cursor.execute(
                read_sql("orders/sql/queries/idempotency_key_purge_v01.sql"),
                {"cutoff": cutoff, "batch_size": batch_size},
            )
            deleted = cursor.rowcount
        purged += deleted
        if deleted < batch_size:
            break
    return purged
