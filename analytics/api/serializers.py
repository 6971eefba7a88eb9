"""Inputs and outputs of the staff reports (analytics/reports.py)."""

from datetime import date, timedelta

from django.utils import timezone
from rest_framework import serializers

from analytics.event_store import BUSINESS_TYPES

MONEY = {"max_digits": 14, "decimal_places": 2}
# The longest window a report reads: a year and a day (a leap year's days,
# plus one), so a year's report fits and no request scans the whole history.
MAX_WINDOW_DAYS = 367
# The dates a window may start and end at: far enough for any shop's history,
# and far from date.min and date.max, whose neighbours overflow the day and
# month arithmetic of the reports (analytics/reports.py: Window.params).
FIRST_DATE = date(1970, 1, 1)
LAST_DATE = date(9000, 1, 1)


def _today():
    return timezone.localdate()


class WindowInput(serializers.Serializer):
    since = serializers.DateField(
        required=False, help_text="First day, inclusive (default: 29 days ago)."
    )
    until = serializers.DateField(
        required=False, help_text="Last day, exclusive (default: tomorrow)."
    )

    def validate(self, data):
        for name in ("since", "until"):
            given = data.get(name)
            if given is not None and not FIRST_DATE <= given <= LAST_DATE:
                raise serializers.ValidationError(
                    {name: f"must be between {FIRST_DATE} and {LAST_DATE}."}
                )
        until = data.get("until") or _today() + timedelta(days=1)
        since = data.get("since") or until - timedelta(days=30)
        if since >= until:
            raise serializers.ValidationError(
                {"until": "must be after since (the window is [since, until))."}
            )
        if (until - since).days > MAX_WINDOW_DAYS:
            raise serializers.ValidationError(
                {"until": f"a window spans at most {MAX_WINDOW_DAYS} days."}
            )
        return {**data, "since": since, "until": until}


class SalesInput(WindowInput):
    min_orders = serializers.IntegerField(
        min_value=1, max_value=1_000_000, default=1,
        help_text="Keep periods with at least this many orders (HAVING).",
    )  # fmt: skip


class TopProductsInput(WindowInput):
    top = serializers.IntegerField(min_value=1, max_value=100, default=5)


class LimitInput(serializers.Serializer):
    limit = serializers.IntegerField(min_value=1, max_value=1000, default=100)


class BoughtTogetherInput(WindowInput):
    min_orders = serializers.IntegerField(min_value=1, max_value=1_000_000, default=2)
    limit = serializers.IntegerField(min_value=1, max_value=1000, default=50)


class SalesRowOutput(serializers.Serializer):
    grain = serializers.ChoiceField(choices=["day", "week", "month", "total"])
    period_start = serializers.DateField(allow_null=True)
    orders = serializers.IntegerField()
    revenue = serializers.DecimalField(**MONEY)


class TopProductRowOutput(serializers.Serializer):
    category = serializers.CharField()
    product_id = serializers.IntegerField()
    name = serializers.CharField()
    units = serializers.IntegerField()
    revenue = serializers.DecimalField(**MONEY)
    row_number = serializers.IntegerField()
    rank = serializers.IntegerField()
    dense_rank = serializers.IntegerField()


class DailyRowOutput(serializers.Serializer):
    day = serializers.DateField()
    orders = serializers.IntegerField()
    revenue = serializers.DecimalField(**MONEY)
    running_total = serializers.DecimalField(**MONEY)
    moving_avg_7d = serializers.DecimalField(**MONEY)


class CustomerRowOutput(serializers.Serializer):
    customer_id = serializers.IntegerField()
    created_at = serializers.DateTimeField()


class CategoryRowOutput(serializers.Serializer):
    category_id = serializers.IntegerField()
    # Null for sales whose category is gone (the FULL JOIN's other orphans).
    slug = serializers.CharField(allow_null=True)
    name = serializers.CharField(allow_null=True)


class CategoryRollupRowOutput(serializers.Serializer):
    category_id = serializers.IntegerField()
    slug = serializers.CharField()
    parent_id = serializers.IntegerField(allow_null=True)
    own_units = serializers.IntegerField()
    units = serializers.IntegerField()
    revenue = serializers.DecimalField(**MONEY)


class CohortRowOutput(serializers.Serializer):
    cohort = serializers.DateField()
    months_later = serializers.IntegerField()
    customers = serializers.IntegerField()


class PairRowOutput(serializers.Serializer):
    product_a = serializers.IntegerField()
    product_b = serializers.IntegerField()
    orders = serializers.IntegerField()


def report_output(name: str, row: type[serializers.Serializer], window=True):
    """The envelope of a report's answer: its window (if any) and its rows."""
    fields = {"results": row(many=True)}
    if window:
        fields["since"] = serializers.DateField()
        fields["until"] = serializers.DateField()
    return type(name, (serializers.Serializer,), fields)


SalesOutput = report_output("SalesOutput", SalesRowOutput)
TopProductsOutput = report_output("TopProductsOutput", TopProductRowOutput)
DailyOutput = report_output("DailyOutput", DailyRowOutput)
CustomersOutput = report_output("CustomersOutput", CustomerRowOutput, window=False)
CategoriesOutput = report_output("CategoriesOutput", CategoryRowOutput)
CategoryRollupOutput = report_output("CategoryRollupOutput", CategoryRollupRowOutput)
CohortsOutput = report_output("CohortsOutput", CohortRowOutput)
PairsOutput = report_output("PairsOutput", PairRowOutput)


class DailySalesRowOutput(serializers.Serializer):
    day = serializers.DateField()
    orders = serializers.IntegerField()
    revenue = serializers.DecimalField(**MONEY)
    source = serializers.ChoiceField(
        choices=["view", "live"],
        help_text="`view`: the materialized view, as of view.refreshed_at; "
        "`live`: the orders table, as of live.as_of.",
    )


class ViewFreshnessOutput(serializers.Serializer):
    refreshed_at = serializers.DateTimeField()
    covers_until = serializers.DateField(
        help_text="The first day the view does not hold; from here on, live."
    )


class LiveFreshnessOutput(serializers.Serializer):
    as_of = serializers.DateTimeField()


class DailySalesOutput(serializers.Serializer):
    since = serializers.DateField()
    until = serializers.DateField()
    results = DailySalesRowOutput(many=True)
    view = ViewFreshnessOutput()
    live = LiveFreshnessOutput()


# --- The event log (analytics/event_log.py) ----------------------------------

BIGINT_MAX = 2**63 - 1


class EventsInput(serializers.Serializer):
    type = serializers.ChoiceField(
        choices=BUSINESS_TYPES, required=False, help_text="One event type."
    )
    customer = serializers.IntegerField(
        min_value=1, max_value=BIGINT_MAX, required=False,
        help_text="The customer's id: their events only.",
    )  # fmt: skip
    since = serializers.DateTimeField(
        required=False, help_text="Events at or after this instant."
    )
    until = serializers.DateTimeField(
        required=False, help_text="Events before this instant."
    )
    cursor = serializers.CharField(
        required=False, max_length=200, help_text="The `next` of the page before."
    )
    limit = serializers.IntegerField(min_value=1, max_value=200, default=50)

    def validate(self, data):
        since, until = data.get("since"), data.get("until")
        if since is not None and until is not None and since >= until:
            raise serializers.ValidationError(
                {"until": "must be after since (the window is [since, until))."}
            )
        return data


class AggregateOutput(serializers.Serializer):
    type = serializers.CharField()
    id = serializers.IntegerField()


class EventOutput(serializers.Serializer):
    id = serializers.CharField(source="_id", help_text="The event's id (a UUID).")
    type = serializers.CharField()
    aggregate = AggregateOutput()
    sequence = serializers.IntegerField(
        help_text="The event's place in its aggregate's history, from 1, gapless."
    )
    customer_id = serializers.IntegerField(allow_null=True)
    occurred_at = serializers.DateTimeField()
    payload = serializers.JSONField()


class EventsOutput(serializers.Serializer):
    next = serializers.URLField(allow_null=True)
    results = EventOutput(many=True)


class FunnelStepOutput(serializers.Serializer):
    step = serializers.ChoiceField(choices=["viewed", "carted", "ordered"])
    pairs = serializers.IntegerField(
        help_text="(customer, product) pairs that reached this step."
    )
    of_viewed = serializers.FloatField(
        allow_null=True, help_text="pairs / the viewed step's pairs."
    )


class FunnelOutput(serializers.Serializer):
    since = serializers.DateField()
    until = serializers.DateField()
    source = serializers.ChoiceField(choices=["mongodb", "postgresql"])
    steps = FunnelStepOutput(many=True)
