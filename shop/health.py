"""GET /healthz: per service ok / disabled / down, and the replica's lag."""

from django.conf import settings
from django.db import connections
from django.http import JsonResponse

from shop.services_probe import redis_answers
from shop.sql_files import read_sql


def _postgres(alias):
    try:
        with connections[alias].cursor() as cursor:
            cursor.execute("SELECT 1")
        return {"status": "ok"}
    except Exception as exc:  # any failure means "down": report it, never raise
        return {"status": "down", "error": str(exc).splitlines()[0]}


def _replica():
    try:
        with connections["replica"].cursor() as cursor:
            cursor.execute(read_sql("shop/sql/queries/replica_status_v01.sql"))
            in_recovery, lag = cursor.fetchone()
        if not in_recovery:
            return {"status": "down", "error": "REPLICA_DATABASE_URL is not a standby"}
        return {"status": "ok", "lag_seconds": round(float(lag), 3)}
    except Exception as exc:
        return {"status": "down", "error": str(exc).splitlines()[0]}


def _redis():
    if not settings.REDIS_AVAILABLE:
        return {
            "status": "disabled",
            "detail": "no Redis at startup: local-memory cache",
        }
    return {"status": "ok"} if redis_answers(settings.REDIS_URL) else {"status": "down"}


def _mongo():
    if not settings.MONGO_URL:
        return {
            "status": "disabled",
            "detail": "MONGO_URL unset: events stay in the outbox",
        }
    try:
        import pymongo

        client = pymongo.MongoClient(settings.MONGO_URL, serverSelectionTimeoutMS=500)
        client.admin.command("ping")
        return {"status": "ok"}
    except Exception as exc:
        return {"status": "down", "error": str(exc).splitlines()[0]}


def healthz(request):
    services = {
        "postgres": _postgres("default"),
        "replica": _replica(),
        "redis": _redis(),
        "mongo": _mongo(),
    }
    down = any(s["status"] == "down" for s in services.values())
    return JsonResponse(
        {"status": "down" if down else "ok", "services": services},
        status=503 if down else 200,
    )
