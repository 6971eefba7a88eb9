"""Celery tasks for orders."""

import logging
from dataclasses import asdict
from datetime import timedelta

from celery import shared_task
from django.conf import settings

from orders.partitions import stock_ledger_maintain
from orders.services import checkout_recover, idempotency_key_purge

log = logging.getLogger(__name__)


@shared_task(acks_late=True)
def checkout_recover_task() -> dict:
    """Periodic: settle checkouts interrupted between phases, and owed refunds.

    Idempotent: the gateway answers by reference and refunds once per
    reference, and every write is conditional, so a second run (or two at
    once) finds nothing left to do. Returns the run's report; what failed is
    logged as an error too, and the next run (5 minutes) tries it again.
    """
    report = checkout_recover()
    if report.failures:
        log.error("checkout recovery left failures: %s", report.failures)
    return {**asdict(report), "settled": report.settled}


@shared_task(acks_late=True)
def idempotency_key_purge_task() -> int:
    """Periodic: delete completed idempotency keys past their retention.

    Idempotent: a second run finds only younger keys.
    """
    return idempotency_key_purge(
        older_than=timedelta(seconds=settings.IDEMPOTENCY_KEY_RETENTION)
    )


@shared_task(acks_late=True)
def stock_ledger_partitions_task() -> dict:
    """Daily: the stock ledger's months ahead made, its old months detached.

    Idempotent: a month that has its partition is left alone, and a month
    already detached is no longer there to detach.
    """
    return asdict(stock_ledger_maintain())
