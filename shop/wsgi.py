"""The WSGI application, for gunicorn (scripts/gunicorn.conf.py).

The settings default to local development's, like manage.py's. The image
sets DJANGO_SETTINGS_MODULE=shop.settings.production (Dockerfile), so there
gunicorn, migrations and Celery all run on production's settings.
"""

import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "shop.settings.local")
application = get_wsgi_application()
