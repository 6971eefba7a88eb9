#!/bin/sh
# Command of the `web` service in docker-compose.yml, run in /app.
# The same steps as `make run`: bring the schema up to date as shop_owner (the
# only role allowed to migrate), seed demo data if the shop is empty, set up
# the event log in MongoDB, serve; but served by gunicorn on production's
# settings (the image's DJANGO_SETTINGS_MODULE), not by runserver.
set -eu

python manage.py migrate --database owner --noinput
python manage.py seed --scale small --if-empty
# The event log's collections, validators and indexes (idempotent): the
# relay's first write then lands in a collection that checks its shape.
# Not fatal: with MongoDB down the shop still sells, and events wait in the
# outbox; run it again once MongoDB is up.
python manage.py event_store_setup || echo "event_store_setup failed: events stay in the outbox until MongoDB is set up"

# gunicorn, with the sizes from the environment (scripts/gunicorn.conf.py),
# on every interface of the container: the published port and the other
# services reach it from outside the container's loopback. exec: gunicorn
# becomes the process Docker's SIGTERM reaches, and stops gracefully.
exec gunicorn --config scripts/gunicorn.conf.py --bind 0.0.0.0:8000
