"""gunicorn's settings for the shop: `gunicorn -c scripts/gunicorn.conf.py`.

The HTTP benchmark (bench/http.py) serves the app with it; a deployment can
too, with the bind address and the sizes from the environment. Options
given on the command line win over this file.
"""

import os

wsgi_app = "shop.wsgi:application"
bind = os.environ.get("GUNICORN_BIND", "127.0.0.1:8000")

# One process per core, each with a few threads. A request spends most of
# its time in Python (Django's middleware, DRF's serializers), and a process
# runs Python on one core at a time (the GIL), so fewer processes than cores
# leave cores idle while more only take turns on them. The rest of a
# request waits on PostgreSQL or Redis, which releases the GIL: a second
# thread runs then, so threads, not extra processes, fill those waits, and
# they share their process's connection pools, where each extra process
# would hold pools of its own (shop/settings/base.py, the formula above
# DATABASE_THREADS). Four threads keep a core busy when a request waits on
# the database for about as long as it computes. On the two shared cores
# the HTTP benchmark (bench/http.py) ran on, 5 x 1, 4 x 2 and 2 x 8 came out
# within the run-to-run noise of 2 x 4: the choice is the reasoning above,
# and GUNICORN_WORKERS / GUNICORN_THREADS change it.
workers = int(os.environ.get("GUNICORN_WORKERS") or os.cpu_count() or 1)
threads = int(os.environ.get("GUNICORN_THREADS") or 4)
worker_class = "gthread"

# The settings size each worker's pools from its threads and check that all
# the workers' pools fit the servers: tell them what this file decided,
# unless the environment already says.
os.environ.setdefault("DATABASE_THREADS", str(threads))
os.environ.setdefault("DATABASE_PROCESSES", str(workers))

# A request slower than this is stuck (the app's statement timeout is 30 s,
# scripts/sql/roles.sql): the worker is killed and replaced.
timeout = 60
graceful_timeout = 20
# No access log: a line written per request is work the benchmark would
# measure; errors still go to the error log.
accesslog = None
# Whether a request came over https is the app's decision alone
# (SECURE_PROXY_SSL_HEADER, shop/settings/production.py, trusted only when the
# deployment says a proxy sets X-Forwarded-Proto). By default gunicorn would
# make it too, believing that header from 127.0.0.1, and a request claiming
# https from the same machine would then never be redirected.
secure_scheme_headers = {}
# gunicorn's control socket has one default path per user, which a second
# server on the machine (the benchmark starts several) would fight over.
control_socket_disable = True
