"""Idempotency keys for checkout (the contract's semantics).

same key, same body, finished     -> the stored response again
same key, same body, payment not
  settled yet                     -> the provisional response again
same key, other body              -> 422 idempotency_key_reused
same key, first still running     -> 409 idempotency_key_in_use
key purged after the retention    -> a new request like any other

The caller owns the transaction: idempotency_key_complete and
idempotency_key_answer_provisionally run in the one their caller opened
(checkout's phase 3, recovery), and refuse to run outside one;
idempotency_key_claim, idempotency_key_reject and idempotency_key_release
always open their own. Phase 1 points the key at its order in one of its
own statements (orders/sql/queries/order_lines_reserve_v01.sql).
"""

import hashlib
import json
import re
from dataclasses import dataclass
from datetime import timedelta

from django.db import connection
from django.utils import timezone

from orders.models import IdempotencyKey
from shop.db_context import customer_statement, customer_transaction, job_transaction
from shop.errors import (
    ApplicationError,
    Conflict,
    InvalidRequest,
    Unprocessable,
    error_status_and_body,
)
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


def idempotency_key_claim(*, customer_id: int, key: str, fingerprint: str) -> Claim:
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
        # One statement, carrying the customer's context: in autocommit it is
        # a transaction of its own, committed at once, so that a concurrent
        # duplicate sees the key (idempotency_claim_v02.sql). Its commit need
        # not wait for the disk: whatever this checkout does next that
        # matters (phase 1, a stored refusal) commits synchronously, which
        # flushes the claim with it; and a claim a crash took before then
        # claimed nothing yet, so the client's retry claims it again.
        with (
            customer_statement(customer_id, wait_for_disk=False) as context,
            connection.cursor() as cursor,
        ):
            cursor.execute(
                read_sql("orders/sql/queries/idempotency_claim_v02.sql"),
                {**params, **context.params},
            )
            row = cursor.fetchone()
        if row:
            return Claim(key_id=row[0])
        with customer_transaction(customer_id):
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


def idempotency_key_complete(*, key_id: int, status: int, body: dict) -> bool:
    """Store the final response, in the caller's transaction; False if already final.

    Checkout's phase 3 and recovery call it inside the transaction that
    settled the order, so the order's outcome and the stored response
    commit together or not at all. A completed key is never overwritten: a
    late phase 3 leaves the answer recovery stored before it.
    """
    _refuse_outside_transaction("idempotency_key_complete")
    with connection.cursor() as cursor:
        cursor.execute(
            read_sql("orders/sql/queries/idempotency_key_complete_v01.sql"),
            {"key_id": key_id, "status": status, "body": json.dumps(body)},
        )
        return cursor.rowcount == 1


def idempotency_key_reject(
    *, customer_id: int, key_id: int, rejection: ApplicationError
) -> None:
    """Store a rejection as the key's final response, in a transaction of its own.

    For a business outcome that ends the checkout before any order exists
    (an empty cart, short stock): replayed to every retry like a success.
    Its status comes from shop/errors.py's one mapping.
    """
    status, body = error_status_and_body(rejection)
    with customer_transaction(customer_id):
        idempotency_key_complete(key_id=key_id, status=status, body=body)


def idempotency_key_stored(*, key_id: int) -> Replay | None:
    """The final response stored with the key, in the caller's transaction."""
    _refuse_outside_transaction("idempotency_key_stored")
    row = (
        IdempotencyKey.objects.filter(pk=key_id, status=IdempotencyKey.Status.COMPLETED)
        .values_list("response_status", "response_body")
        .first()
    )
    return Replay(*row) if row else None


def idempotency_key_answer_provisionally(
    *, key_id: int, status: int, body: dict
) -> None:
    """Store an answer to replay while the key's checkout is still unsettled.

    For a payment whose outcome is unknown: the key stays in progress, so
    recovery still completes it (paid) or frees it (released), and until
    then a retry gets this answer instead of charging again. Runs in the
    caller's transaction (checkout's phase 3).
    """
    _refuse_outside_transaction("idempotency_key_answer_provisionally")
    IdempotencyKey.objects.filter(
        pk=key_id, status=IdempotencyKey.Status.IN_PROGRESS
    ).update(response_status=status, response_body=body)


def idempotency_key_release(*, customer_id: int, key_id: int) -> None:
    """Forget a claim whose request ended without a final answer, so a retry can run.

    In a transaction of its own. For a request that failed unexpectedly,
    and for one told to wait and retry (checkout_in_progress): storing that
    as the key's answer would replay "wait" for a day.
    """
    with customer_transaction(customer_id):
        IdempotencyKey.objects.filter(
            pk=key_id, status=IdempotencyKey.Status.IN_PROGRESS
        ).delete()


def _refuse_outside_transaction(name: str) -> None:
    if not connection.in_atomic_block:
        raise RuntimeError(
            f"{name} runs in its caller's transaction, so that the key and the "
            "order it answers for commit together: call it inside one."
        )


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
