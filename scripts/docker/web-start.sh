#!/bin/sh
# Command of the `web` service in docker-compose.yml, run in /app.
# The same steps as `make run`: bring the schema up to date as shop_owner (the
# only role allowed to migrate), seed demo data if the shop is empty, serve.
set -eu

python manage.py migrate --database owner --noinput
python manage.py seed --scale small --if-empty

# No autoreloader: the code is baked into the image, nothing changes under it.
exec python manage.py runserver 0.0.0.0:8000 --noreload
