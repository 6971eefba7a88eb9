"""Celery tasks for the event log: the outbox relay and its purge."""

from dataclasses import asdict

from celery import shared_task

from analytics.product_views import product_views_flush
from analytics.relay import outbox_purge, relay_pending
from analytics.reports import daily_sales_refresh


@shared_task(acks_late=True, ignore_result=True)
def outbox_relay_task() -> dict:
    """Ship pending outbox events to MongoDB (analytics/relay.py).

    Kicked after a commit that wrote events (shop/outbox.py) and run by beat
    every OUTBOX_RELAY_INTERVAL seconds. Safe to run twice at once: the
    relays split the backlog between them. With MongoDB down it ships
    nothing, loses nothing, and reports why.
    """
    report = relay_pending()
    return {key: value for key, value in asdict(report).items() if key != "positions"}


@shared_task(acks_late=True, ignore_result=True)
def outbox_purge_task() -> int:
    """Periodic: delete shipped events past OUTBOX_RETENTION_SECONDS."""
    return outbox_purge()


@shared_task(acks_late=True, ignore_result=True)
def product_views_flush_task() -> int:
    """Periodic: move buffered product views from Redis into the outbox."""
    return product_views_flush()


@shared_task(acks_late=True, ignore_result=True)
def daily_sales_refresh_task() -> str:
    """Periodic: refresh the daily-sales view (CONCURRENTLY: readers go on)."""
    return daily_sales_refresh().isoformat()
