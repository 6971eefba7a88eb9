#!/usr/bin/env bash
# Capture the SQL of chapter 16's ORMs into docs/snippets/orm/ (and the
# transcripts of the labs `sqlalchemy` and `alembic`), against the
# development database: `make migrate` first.
#
#   1. the JavaScript side, if node and npm are installed: `npm ci` in
#      orm/js (the committed package-lock.json) unless node_modules is
#      there, then `prisma generate` (the client Prisma's script imports)
#   2. scripts/orm_snippets.py: runs Alembic offline, Django's sqlmigrate
#      of the same change, both JavaScript scripts and both labs, and
#      writes what each printed, under a header that says how and when
#
# Prisma's CLI downloads its schema engine before any command, `generate`
# included, although `generate` never runs it; where binaries.prisma.sh is
# out of reach (as on the machine these snippets were made on), that stops
# `generate` too. So, unless set already, PRISMA_SCHEMA_ENGINE_BINARY points
# the CLI at a stand-in that refuses to run (orm/js/bin/no-schema-engine):
# `generate` works offline, and migrate or db pull, which the shop never
# uses (Django migrates), would fail with a message that says why.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
PY="$ROOT/.venv/bin/python"
JS="$ROOT/orm/js"

js_install() {
    if ! command -v node >/dev/null || ! command -v npm >/dev/null; then
        echo "node or npm not found: the JavaScript snippets are not run" >&2
        return 0
    fi
    if [ ! -d "$JS/node_modules" ]; then
        (cd "$JS" && npm ci --no-audit --no-fund) \
            || { echo "npm ci failed in orm/js: the JavaScript snippets are not run" >&2; return 0; }
    fi
    if [ -z "${PRISMA_SCHEMA_ENGINE_BINARY:-}" ]; then
        export PRISMA_SCHEMA_ENGINE_BINARY="$JS/bin/no-schema-engine"
    fi
    (cd "$JS" && npx --no-install prisma generate) \
        || echo "prisma generate failed: the Prisma snippet is not run" >&2
}

js_install
exec "$PY" scripts/orm_snippets.py
