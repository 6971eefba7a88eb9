# The image of the web, worker and beat services in docker-compose.yml.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

WORKDIR /app

# Dependencies first, in their own layer: a code change does not reinstall them.
# The pinned set installs from manylinux wheels on x86_64 (psycopg-binary brings
# its own libpq), so the slim image needs no compiler or -dev packages.
COPY requirements.txt ./
RUN pip install -r requirements.txt

COPY . .

# Not root: Celery warns about root, and nothing here needs it. var/ is where
# the app may write (celery beat's schedule file, collected static files).
RUN useradd --create-home --uid 10001 shop \
    && mkdir -p var \
    && chown shop:shop var
USER shop

EXPOSE 8000
CMD ["/app/scripts/docker/web-start.sh"]
