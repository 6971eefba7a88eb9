"""Local development: `make run`."""

from .base import *  # noqa: F403
from .base import env_bool

DEBUG = env_bool("DJANGO_DEBUG", True)
# A pool of server connections per process (Django 5.1+, psycopg 3); the pool
# replaces CONN_MAX_AGE, which must stay 0 (chapter 16).
DATABASES["default"]["OPTIONS"]["pool"] = {"min_size": 1, "max_size": 10, "timeout": 10}  # noqa: F405
