"""Celery tasks for orders."""

from celery import shared_task

from orders.services import checkout_recover


@shared_task(acks_late=True)
def checkout_recover_task() -> int:
    """Periodic: release stock held by checkouts interrupted between phases.

    Idempotent: a second run finds nothing older than the cut-off to release.
    """
    return checkout_recover()
