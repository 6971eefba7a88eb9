"""Local development: `make run`."""

from .base import *  # noqa: F403
from .base import connection_budget, databases, env, env_bool, pool_size

DEBUG = env_bool("DJANGO_DEBUG", True)
# runserver starts a thread per request and its threads share one pool per
# alias; 8 at once is plenty for one developer. The processes: runserver,
# and the Celery worker's two (`make run`, scripts/services.sh workers), each
# with a pool of this size (base.py: the formula above DATABASE_THREADS).
DATABASE_THREADS = int(env("DATABASE_THREADS", "8"))
DATABASE_PROCESSES = int(env("DATABASE_PROCESSES", "3"))
DATABASE_POOL = pool_size(DATABASE_THREADS)
DATABASES = databases(DATABASE_POOL)
connection_budget(DATABASES, threads=DATABASE_THREADS, processes=DATABASE_PROCESSES)

# Local development and demos: limits loose enough for scripted walkthroughs
# (the contract smoke registers and logs in several times a run) yet still
# there to be seen; production keeps base.py's strict defaults.
AUTH_RATE_REGISTER = env("AUTH_RATE_REGISTER", "300/hour")
AUTH_RATE_TOKEN = env("AUTH_RATE_TOKEN", "120/min")
AUTH_RATE_TOKEN_EMAIL = env("AUTH_RATE_TOKEN_EMAIL", "30/min")
