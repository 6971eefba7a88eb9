"""The outbox's two helpers every app may call (shop/models.py says what it is).

outbox_kick()     after this transaction commits, ask a Celery worker to ship
                  its events now, instead of at the next beat
outbox_backlog()  how many events wait, and the oldest one's time

The relay itself is analytics' (analytics/relay.py); the shop names its task
instead of importing it, since `shop` imports no app (DESIGN.md's layers).
"""

import logging
import time
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


# After a kick failed, this process sends none for this many seconds: kombu
# retries a refused broker connection for seconds before it gives up, and
# every request that wrote events would pay that while the broker is down.
KICK_PAUSE = 30.0
_kick_paused_until = [0.0]


def _send_kick() -> None:
    from shop.celery import app  # the app is configured by Django's settings

    if time.monotonic() < _kick_paused_until[0]:
        return  # the broker failed a moment ago; beat ships once it is back
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
        _kick_paused_until[0] = time.monotonic() + KICK_PAUSE
        log.warning(
            "outbox: could not ask a worker to ship events now (%s); no kick "
            "for %ss, beat ships them once the broker is back",
            exc,
            KICK_PAUSE,
        )


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
