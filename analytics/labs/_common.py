"""What several analytics labs share: a plan printed as it runs, and the
event store a lab may use."""

from __future__ import annotations

from django.conf import settings
from django.db import connection

from analytics import event_store
from shop.lab import Narrator


def explain_analyzed(n: Narrator, sql: str, params, label: str) -> list[str]:
    """Run `sql` under EXPLAIN ANALYZE, print its plan, return its lines."""
    n.say(f"    -- {label}")
    with connection.cursor() as cursor:
        # ANALYZE runs it (the labs' statements only read); TIMING OFF keeps
        # the row counts and drops the clock readings, which differ from run
        # to run.
        cursor.execute("EXPLAIN (ANALYZE, COSTS OFF, TIMING OFF) " + sql, params)
        lines = [row[0] for row in cursor.fetchall()]
    for line in lines:
        n.say(f"       {line}")
    return lines


def store_url(n: Narrator) -> str:
    """MONGO_URL if a MongoDB answers there, else mongomock (and say so)."""
    url = settings.MONGO_URL
    if url and not url.startswith(event_store.MOCK_SCHEME):
        try:
            event_store.ping()
            n.say(f"    -- the event store: the MongoDB at MONGO_URL ({url})")
            return url
        except event_store.EventStoreUnavailable as exc:
            n.say(f"    -- MONGO_URL does not answer ({exc}); using mongomock")
    n.say(
        "    -- the event store: mongomock, in this process (no MongoDB answers "
        "at MONGO_URL). It shows the relay's logic, not MongoDB's behaviour."
    )
    return event_store.MOCK_SCHEME
