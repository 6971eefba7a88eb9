"""The staff reports under /api/v1/analytics/: parse, run the report, render."""

from drf_spectacular.utils import extend_schema
from rest_framework.permissions import IsAdminUser
from rest_framework.response import Response
from rest_framework.utils.urls import replace_query_param
from rest_framework.views import APIView

from analytics import event_log, reports
from analytics.api import serializers as s

WINDOWED = "Paid orders placed in [since, until), whole days in the shop's time zone."


class _ReportApi(APIView):
    permission_classes = [IsAdminUser]
    input_class: type = s.WindowInput
    output_class: type

    def get(self, request):
        data = self.input_class(data=request.query_params)
        data.is_valid(raise_exception=True)
        params = dict(data.validated_data)
        window = {key: params[key] for key in ("since", "until") if key in params}
        body = {"results": self.run(params), **window}
        return Response(self.output_class(body).data)

    @staticmethod
    def window(params) -> reports.Window:
        return reports.Window(since=params.pop("since"), until=params.pop("until"))


def window_of(request) -> reports.Window:
    """The request's [since, until) window, validated (s.WindowInput)."""
    data = s.WindowInput(data=request.query_params)
    data.is_valid(raise_exception=True)
    return reports.Window(data.validated_data["since"], data.validated_data["until"])


def _schema(input_class, output_class, description):
    return extend_schema(
        parameters=[input_class], responses={200: output_class}, description=description
    )


class SalesApi(_ReportApi):
    input_class, output_class = s.SalesInput, s.SalesOutput

    @_schema(
        s.SalesInput,
        s.SalesOutput,
        "Orders and revenue per day, week and month, and the total (GROUPING "
        "SETS; HAVING min_orders). " + WINDOWED,
    )
    def get(self, request):
        return super().get(request)

    def run(self, params):
        return reports.sales_by_period(self.window(params), **params)


class TopProductsApi(_ReportApi):
    input_class, output_class = s.TopProductsInput, s.TopProductsOutput

    @_schema(
        s.TopProductsInput,
        s.TopProductsOutput,
        "The best-selling products of each category by units, ranked three "
        "ways (ROW_NUMBER, RANK, DENSE_RANK); ties at rank `top` are all "
        "kept. " + WINDOWED,
    )
    def get(self, request):
        return super().get(request)

    def run(self, params):
        return reports.top_products_per_category(self.window(params), **params)


class DailyApi(_ReportApi):
    output_class = s.DailyOutput

    @_schema(
        s.WindowInput,
        s.DailyOutput,
        "Revenue per day, days without sales included, with the running "
        "total and the 7-day moving average (window frames). " + WINDOWED,
    )
    def get(self, request):
        return super().get(request)

    def run(self, params):
        return reports.daily_running_totals(self.window(params))


class CustomersWithoutOrdersApi(_ReportApi):
    input_class, output_class = s.LimitInput, s.CustomersOutput

    @_schema(
        s.LimitInput,
        s.CustomersOutput,
        "Customers who never placed an order (an anti-join, NOT EXISTS).",
    )
    def get(self, request):
        return super().get(request)

    def run(self, params):
        return reports.customers_never_ordered(**params)


class CategoriesWithoutSalesApi(_ReportApi):
    output_class = s.CategoriesOutput

    @_schema(
        s.WindowInput,
        s.CategoriesOutput,
        "Categories whose products sold nothing (a FULL JOIN). " + WINDOWED,
    )
    def get(self, request):
        return super().get(request)

    def run(self, params):
        return reports.categories_without_sales(self.window(params))


class CategoryRollupApi(_ReportApi):
    output_class = s.CategoryRollupOutput

    @_schema(
        s.WindowInput,
        s.CategoryRollupOutput,
        "Units and revenue per category, its subtree's included (a "
        "recursive CTE over the category tree). " + WINDOWED,
    )
    def get(self, request):
        return super().get(request)

    def run(self, params):
        return reports.category_rollup(self.window(params))


class CohortsApi(_ReportApi):
    output_class = s.CohortsOutput

    @_schema(
        s.WindowInput,
        s.CohortsOutput,
        "Customers by the month of their first paid order (the cohorts the "
        "window's months start), and how many ordered again N months later.",
    )
    def get(self, request):
        return super().get(request)

    def run(self, params):
        return reports.repeat_purchase_cohorts(self.window(params))


class BoughtTogetherApi(_ReportApi):
    input_class, output_class = s.BoughtTogetherInput, s.PairsOutput

    @_schema(
        s.BoughtTogetherInput,
        s.PairsOutput,
        "Pairs of products bought in the same order (a self-join of order "
        "lines), most frequent first. " + WINDOWED,
    )
    def get(self, request):
        return super().get(request)

    def run(self, params):
        return reports.bought_together(self.window(params), **params)


class DailySalesApi(_ReportApi):
    output_class = s.DailySalesOutput

    @_schema(
        s.WindowInput,
        s.DailySalesOutput,
        "Orders and revenue per UTC day: the closed days from a materialized "
        "view that beat refreshes, the days since its refresh from the live "
        "orders (an order placed a second ago is counted). `view` and `live` "
        "say how fresh each part is.",
    )
    def get(self, request):
        window = window_of(request)
        body = {
            "since": window.since,
            "until": window.until,
            **reports.daily_sales(window),
        }
        return Response(self.output_class(body).data)


class EventsApi(APIView):
    permission_classes = [IsAdminUser]

    @extend_schema(
        parameters=[s.EventsInput],
        responses={200: s.EventsOutput},
        description="The MongoDB event log, newest first, by keyset: `next` "
        "carries the last event's (occurred_at, id). 503 "
        "`event_store_unavailable` when MongoDB does not answer (the events "
        "wait in the outbox meanwhile).",
    )
    def get(self, request):
        data = s.EventsInput(data=request.query_params)
        data.is_valid(raise_exception=True)
        params = dict(data.validated_data)
        if "customer" in params:
            params["customer_id"] = params.pop("customer")
        page = event_log.events_page(**params)
        next_url = None
        if page.next_cursor:
            next_url = replace_query_param(
                request.build_absolute_uri(), "cursor", page.next_cursor
            )
        body = {"next": next_url, "results": page.events}
        return Response(s.EventsOutput(body).data)


class FunnelApi(APIView):
    permission_classes = [IsAdminUser]

    @extend_schema(
        parameters=[s.WindowInput],
        responses={200: s.FunnelOutput},
        description="Viewed -> carted -> ordered, per (customer, product) "
        "pair: of the pairs a signed-in customer viewed in [since, until), "
        "those whose product they then added to the cart, and then ordered. "
        "An aggregation pipeline over the MongoDB event log, whose raw views "
        "expire after EVENT_VIEW_TTL_SECONDS (90 days by default): an older "
        "window has no views. 503 "
        "`event_store_unavailable` when MongoDB does not answer.",
    )
    def get(self, request):
        window = window_of(request)
        return Response(s.FunnelOutput(event_log.funnel_mongo(window)).data)
