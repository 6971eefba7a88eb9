# The image of the web, worker and beat services in docker-compose.yml.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

WORKDIR /app

# Dependencies first, in their own layer: a code change does not reinstall them.
# Only the app's lock (requirements.txt): no test, lint or docs tool is in
# the image. --require-hashes: pip installs exactly the files locked, and
# refuses any package the lock does not pin. The pinned set installs from
# manylinux wheels on x86_64 (psycopg-binary brings its own libpq), so the
# slim image needs no compiler or -dev packages.
COPY requirements.txt ./
RUN pip install --require-hashes -r requirements.txt

COPY . .

# Production's settings for everything the image runs: gunicorn (shop/wsgi.py),
# Celery (shop/celery.py) and manage.py alike. Their secrets come from the
# environment at run time; without them the settings refuse to start.
ENV DJANGO_SETTINGS_MODULE=shop.settings.production

# The static files, gathered and hashed once, at build, for WhiteNoise to
# serve (production.py). Importing the settings needs the secrets, so this
# one command gets placeholders: collectstatic signs nothing, encrypts
# nothing and connects to nothing, and they are not in the image's
# environment afterwards.
RUN DJANGO_SECRET_KEY=collectstatic-only \
    FIELD_ENCRYPTION_KEYS=1:collectstatic-only \
    python manage.py collectstatic --noinput

# Not root: Celery warns about root, and nothing here needs it. var/ is where
# the app may write (celery beat's schedule file); the static files in
# var/static stay root's, read-only to the app.
RUN useradd --create-home --uid 10001 shop \
    && mkdir -p var \
    && chown shop:shop var
USER shop

EXPOSE 8000
CMD ["/app/scripts/docker/web-start.sh"]
