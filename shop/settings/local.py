"""Local development: `make run`."""

from .base import *  # noqa: F403
from .base import databases, env, env_bool

DEBUG = env_bool("DJANGO_DEBUG", True)
# runserver's threads share one pool per process (base.py: databases()).
DATABASE_POOL = {"min_size": 1, "max_size": 10}
DATABASES = databases(DATABASE_POOL)

# Local development and demos: limits loose enough for scripted walkthroughs
# (the contract smoke registers and logs in several times a run) yet still
# there to be seen; production keeps base.py's strict defaults.
AUTH_RATE_REGISTER = env("AUTH_RATE_REGISTER", "300/hour")
AUTH_RATE_TOKEN = env("AUTH_RATE_TOKEN", "120/min")
AUTH_RATE_TOKEN_EMAIL = env("AUTH_RATE_TOKEN_EMAIL", "30/min")
