"""GET /api/v1/ping/: the framework's own cost, with no database and no Redis.

The HTTP benchmark (bench/http.py) measures it in the same run as the real
endpoints, as the ceiling of what gunicorn, Django's middleware and DRF can
serve on the machine: every other endpoint costs this plus its own work. So
it authenticates no one (a token is a row in PostgreSQL), counts nothing in
Redis (no throttle) and renders JSON only. /healthz is no substitute: it
asks every service whether it answers.
"""

from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.permissions import AllowAny
from rest_framework.renderers import JSONRenderer
from rest_framework.response import Response
from rest_framework.views import APIView


class PingOutput(serializers.Serializer):
    ok = serializers.BooleanField(help_text="Always true: the process answers.")


class PingApi(APIView):
    authentication_classes = []
    permission_classes = [AllowAny]
    throttle_classes = []
    renderer_classes = [JSONRenderer]

    @extend_schema(responses={200: PingOutput})
    def get(self, request):
        return Response({"ok": True})
