"""GET /api/v1/ops/top-queries/: the top statements, for staff."""

from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.permissions import IsAdminUser
from rest_framework.response import Response
from rest_framework.views import APIView

from shop.observability.selectors import MAX_LIMIT, ORDERS, top_statements_list


class TopQueriesInput(serializers.Serializer):
    limit = serializers.IntegerField(min_value=1, max_value=MAX_LIMIT, default=20)
    order = serializers.ChoiceField(
        choices=ORDERS,
        default="total",
        help_text="`total`: time spent in all (start here); `mean`: time per "
        "call; `calls`: how often it ran.",
    )


class TopStatementOutput(serializers.Serializer):
    # As text: a 64-bit hash, past the integers JavaScript reads exactly.
    queryid = serializers.CharField(help_text="pg_stat_statements' queryid.")
    role = serializers.CharField(allow_null=True, help_text="The role that ran it.")
    calls = serializers.IntegerField()
    total_exec_ms = serializers.FloatField()
    mean_exec_ms = serializers.FloatField()
    rows = serializers.IntegerField()
    shared_blks_hit = serializers.IntegerField()
    shared_blks_read = serializers.IntegerField()
    query = serializers.CharField(help_text="Normalized: constants are $1, $2, ...")


class TopQueriesOutput(serializers.Serializer):
    order = serializers.ChoiceField(choices=ORDERS)
    limit = serializers.IntegerField()
    results = TopStatementOutput(many=True)


class TopQueriesApi(APIView):
    permission_classes = [IsAdminUser]

    @extend_schema(
        parameters=[TopQueriesInput],
        responses={200: TopQueriesOutput},
        description="This database's statements that cost the server most, "
        "from pg_stat_statements since its counters were last reset, read as "
        "the monitoring role (shop_monitor: every role's statements, no "
        "table's rows). 503 `pg_stat_statements_unavailable` when the "
        "extension is not installed or not loaded.",
    )
    def get(self, request):
        data = TopQueriesInput(data=request.query_params)
        data.is_valid(raise_exception=True)
        params = data.validated_data
        rows = top_statements_list(limit=params["limit"], order=params["order"])
        body = {"order": params["order"], "limit": params["limit"], "results": rows}
        return Response(TopQueriesOutput(body).data)
