"""The Celery app. Settings come from Django's settings, prefixed CELERY_."""

import os

from celery import Celery

# Local development's settings unless told otherwise, as in manage.py and
# shop/wsgi.py; the image sets production's (Dockerfile).
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "shop.settings.local")

app = Celery("shop")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
