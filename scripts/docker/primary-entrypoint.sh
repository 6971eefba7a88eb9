#!/usr/bin/env bash
# Entrypoint of the `primary` service in docker-compose.yml: the stock
# postgres image's entrypoint, after one preparation it cannot do itself.
#
# The WAL archive (archive_command in docker-compose.yml, chapter 24) lives
# on its own named volume. Docker creates a fresh volume owned by root, and
# the server runs as `postgres`, so the directory is handed over here, while
# we are still root; the image's entrypoint then drops to `postgres` as usual.
set -euo pipefail

# Must match the archive volume and archive_command in docker-compose.yml.
WAL_ARCHIVE=/var/lib/postgresql/wal-archive

if [ "$(id -u)" = 0 ]; then
    mkdir -p "$WAL_ARCHIVE"
    chown postgres:postgres "$WAL_ARCHIVE"
    chmod 700 "$WAL_ARCHIVE"
fi

exec docker-entrypoint.sh "$@"
