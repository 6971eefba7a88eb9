"""The transactional outbox: every business event, written with its change.

An event is a row of shop_outbox_event, inserted in the transaction that
made the change it reports, so the two commit together or not at all: no
order is paid without its `order.paid`, and no event tells of a change that
rolled back. The order, payment, stock-ledger and cart triggers write them
(orders/sql/triggers/outbox_v01.sql), so every path that changes those rows
(the API, checkout's SQL function, the recovery procedure, the admin, psql)
writes its events. All of them go through one SQL function,
shop_outbox_append (shop/sql/functions/outbox_append_v01.sql), which numbers
each aggregate's events. The relay (analytics/relay.py) ships pending rows
to the MongoDB event log and marks them shipped; a purge deletes shipped
rows after a retention period. Chapter 21.

Only a background job reads, ships or purges the outbox: row-level security
lets any context append and only a job context see (shop/sql/rls/
outbox_v01.sql).
"""

from django.contrib.postgres.functions import RandomUUID
from django.db import models
from django.db.models import Func, Q, TextField
from django.db.models.functions import Now
from django.db.models.lookups import Exact

# Every kind of event the shop writes. A new kind is a migration, as a new
# column would be: the relay, the event log's validator and the API's
# filters know this list.
EVENT_TYPES = (
    "order.placed",
    "order.paid",
    "order.failed",
    "order.cancelled",
    "order.refunded",
    "stock.changed",
    "cart.item_added",
    "cart.item_removed",
    "product.viewed",
)
AGGREGATE_TYPES = ("order", "stock_level", "cart", "product")


class OutboxEvent(models.Model):
    """One business event, pending until the relay has shipped it."""

    # The relay's order and cursor: an identity, so later commits of one
    # aggregate get larger positions (its sequence row serializes them).
    id = models.BigAutoField(primary_key=True)
    # The event's identity outside PostgreSQL: the event log's _id. Random,
    # not the position: a database restored to an earlier point reuses
    # positions, and an upsert by a reused _id would drop the new event.
    event_id = models.UUIDField(db_default=RandomUUID(), editable=False)
    type = models.CharField(max_length=32)
    aggregate_type = models.CharField(max_length=32)
    aggregate_id = models.BigIntegerField()
    # 1, 2, 3 ... per aggregate, without gaps: shop_outbox_append takes it
    # from OutboxSequence in the writer's transaction.
    sequence = models.BigIntegerField()
    # Who the event concerns, when it concerns a customer: the event log's
    # filter. No foreign key, like the audit trail: an event outlives its
    # customer, and history is not rewritten by a later delete.
    customer_id = models.BigIntegerField(null=True, blank=True)
    occurred_at = models.DateTimeField(db_default=Now())
    # Ids, amounts, quantities, statuses: never an address, a token or an
    # encrypted field (tests/orders/test_outbox_events.py reads every
    # payload's keys).
    payload = models.JSONField()
    shipped_at = models.DateTimeField(null=True, blank=True)
    # MongoDB refused this event for good (its validator, or another event
    # already in its aggregate's place): set aside, with MongoDB's reason,
    # so that the events after it still ship. Someone must look: /healthz
    # counts these for staff, and the relay logs each as an error.
    refused_at = models.DateTimeField(null=True, blank=True)
    refusal = models.TextField(blank=True, db_default="")

    class Meta:
        db_table = "shop_outbox_event"
        constraints = [
            models.UniqueConstraint(
                fields=["event_id"], name="shop_outbox_event_event_id_uniq"
            ),
            models.UniqueConstraint(
                fields=["aggregate_type", "aggregate_id", "sequence"],
                name="shop_outbox_event_aggregate_sequence_uniq",
            ),
            models.CheckConstraint(
                condition=Q(type__in=EVENT_TYPES), name="shop_outbox_event_type_valid"
            ),
            models.CheckConstraint(
                condition=Q(aggregate_type__in=AGGREGATE_TYPES),
                name="shop_outbox_event_aggregate_type_valid",
            ),
            models.CheckConstraint(
                condition=Q(sequence__gt=0), name="shop_outbox_event_sequence_positive"
            ),
            models.CheckConstraint(
                condition=Q(shipped_at__isnull=True) | Q(refused_at__isnull=True),
                name="shop_outbox_event_shipped_or_refused",
            ),
            models.CheckConstraint(
                condition=Exact(
                    Func("payload", function="jsonb_typeof", output_field=TextField()),
                    "object",
                ),
                name="shop_outbox_event_payload_is_object",
            ),
        ]
        indexes = [
            # The relay reads the oldest pending events and /healthz counts
            # them: a partial index holds only the backlog, so it stays
            # small however much has shipped.
            models.Index(
                fields=["id"],
                condition=Q(shipped_at__isnull=True, refused_at__isnull=True),
                name="shop_outbox_pending_idx",
            ),
            # The purge deletes the oldest shipped events.
            models.Index(
                fields=["shipped_at"],
                condition=Q(shipped_at__isnull=False),
                name="shop_outbox_shipped_idx",
            ),
        ]

    def __str__(self):
        return f"{self.type} {self.aggregate_type}:{self.aggregate_id}#{self.sequence}"


class OutboxSequence(models.Model):
    """The last sequence number each aggregate's events took."""

    pk = models.CompositePrimaryKey("aggregate_type", "aggregate_id")
    aggregate_type = models.CharField(max_length=32)
    aggregate_id = models.BigIntegerField()
    last_sequence = models.BigIntegerField()

    class Meta:
        db_table = "shop_outbox_sequence"
        constraints = [
            models.CheckConstraint(
                condition=Q(last_sequence__gt=0),
                name="shop_outbox_sequence_positive",
            ),
        ]

    def __str__(self):
        return f"{self.aggregate_type}:{self.aggregate_id} at {self.last_sequence}"
