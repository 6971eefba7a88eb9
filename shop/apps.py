from django.apps import AppConfig


class ShopConfig(AppConfig):
    name = "shop"
    verbose_name = "Shop (project)"

    def ready(self):
        # Connects Celery's signals that carry the request id into tasks
        # (web processes publish, workers run); importing it is the point.
        from shop.observability import task_context  # noqa: F401
