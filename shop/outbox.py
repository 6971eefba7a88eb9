"""The outbox's two helpers every app may call (shop/models.py says what it is).

outbox_kick()     after this transaction commits, ask a Celery worker to ship
                  its events now, instead of at the next beat
outbox_backlog()  how many events wait, and the oldest one's time

The relay itself is analytics' (analytics/relay.py); the shop names its task
instead of importing it, since `shop` imports no app (DESIGN.md's layers).
"""

import logging
from dataclasses import dataclass
from datetime import datetime

from django.conf import settings
from django.db import transaction

from shop.db_context import job_transaction
from shop.sql_files import read_sql

log = logging.getLogger(__name__)

RELAY_TASK = "analytics.tasks.outbox_relay_task"
BACKLOG_JOB = "outbox_backlog"
KICK_EXPIRES = 60


def outbox_kick(*, using: str = "default") -> None:
    """Ship this transaction's events soon after it commits.

    Only a hint: the beat schedule runs the relay every few seconds anyway,
    so a kick that cannot be sent loses nothing. Sent after COMMIT
    (transaction.on_commit): before it, the worker might look before the
    events are visible, and a rollback would send it for nothing. Without
    an event store there is nothing to ship to, and no kick is sent: a
    message per write would pile up on the broker for nothing.
    """
    if settings.MONGO_URL:
        transaction.on_commit(_send_kick, using=using)


def _send_kick() -> None:
    from shop.celery import app  # the app is configured by Django's settings

    if app.conf.task_always_eager:
        # No broker (REDIS_URL empty): an eager task would run the relay
        # inside this request, waiting on MongoDB. `manage.py outbox_relay`
        # ships instead (docs/chapters/21-hybrid-architectures.md).
        return
    try:
        # By name: the web process never imports analytics' tasks (Celery
        # registers them in workers only). No retries: with the broker down
        # the request must not wait for it. A kick that waited a minute for
        # a worker is stale: beat has run since.
        app.send_task(RELAY_TASK, retry=False, expires=KICK_EXPIRES)
    except Exception as exc:  # broker down: beat (or the command) ships later
        log.warning("outbox: could not ask a worker to ship events now: %s", exc)


@dataclass(frozen=True)
class Backlog:
    pending: int
    oldest: datetime | None
    refused: int = 0


def outbox_backlog(*, using: str = "default") -> Backlog:
    """The events not shipped yet; read as a job, the only reader allowed."""
    with (
        job_transaction(BACKLOG_JOB, using=using),
        transaction.get_connection(using).cursor() as cursor,
    ):
        cursor.execute(read_sql("shop/sql/queries/outbox_backlog_v01.sql"))
        pending, oldest, refused = cursor.fetchone()
    return Backlog(pending=pending, oldest=oldest, refused=refused)
