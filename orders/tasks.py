"""Celery tasks for orders."""

from datetime import timedelta

from celery import shared_task
from django.conf import settings

from orders.services import checkout_recover, idempotency_key_purge


@shared_task(acks_late=True)
def checkout_recover_task() -> int:
    """Periodic: settle checkouts interrupted between phases, and owed refunds.

    Idempotent: the gateway answers by reference and refunds once per
    reference, and every write is conditional, so a second run (or two at
    once) finds nothing left to do.
    """
    return checkout_recover()


@shared_task(acks_late=True)
def idempotency_key_purge_task() -> int:
    """Periodic: delete completed idempotency keys past their retention.

    Idempotent: a second run finds only younger keys.
    """
    return idempotency_key_purge(
        older_than=timedelta(seconds=settings.IDEMPOTENCY_KEY_RETENTION)
    )
