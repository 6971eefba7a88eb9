#!/usr/bin/env bash
# Runs once, from /docker-entrypoint-initdb.d, when the primary's data volume
# is empty (the postgres image's entrypoint runs it as `postgres`, against a
# temporary server that listens on the Unix socket only).
#
# It does what scripts/services.sh does for the local primary, with the same
# SQL files, so both set-ups get the same roles and the same database:
#   - the roles of DESIGN.md "Database roles" (scripts/sql/roles.sql),
#   - the database, owned by shop_owner so migrations can create the schema,
#   - superuser-only extensions in template1 and the database
#     (scripts/sql/database.sql; template1 so test databases inherit them),
#   - a pg_hba.conf line that lets the replica stream as shop_replicator.
set -euo pipefail

SQL_DIR="${SHOP_SQL_DIR:-/shop/sql}"
DB_NAME="${SHOP_DB_NAME:-shop}"

# Over the socket as the image's superuser. PGHOST is cleared so the socket is
# used even if the environment names a host (as the image's own helper does).
psql_admin() {
    PGHOST='' PGHOSTADDR='' psql -X -q -v ON_ERROR_STOP=1 \
        --username "$POSTGRES_USER" --no-password "$@"
}

echo "shop: creating roles"
psql_admin --dbname postgres \
    -v owner_pw="${SHOP_OWNER_PASSWORD:-shop_owner}" \
    -v app_pw="${SHOP_APP_PASSWORD:-shop_app}" \
    -v ro_pw="${SHOP_READONLY_PASSWORD:-shop_readonly}" \
    -v loader_pw="${SHOP_LOADER_PASSWORD:-shop_loader}" \
    -v repl_pw="${SHOP_REPLICATOR_PASSWORD:-shop_replicator}" \
    -v monitor_pw="${SHOP_MONITOR_PASSWORD:-shop_monitor}" \
    -f "$SQL_DIR/roles.sql"

echo "shop: creating database $DB_NAME owned by shop_owner"
psql_admin --dbname postgres -v db="$DB_NAME" <<'SQL'
CREATE DATABASE :"db" OWNER shop_owner;
SQL

psql_admin --dbname template1 -f "$SQL_DIR/database.sql"
psql_admin --dbname "$DB_NAME" -f "$SQL_DIR/database.sql"

# Replication connections match only lines whose database is `replication`
# (the image's own `host all all all` line does not cover them). `samenet`
# is the compose network, where the replica lives. The running server reads
# this file when the entrypoint restarts it after the init scripts.
cat >>"$PGDATA/pg_hba.conf" <<'HBA'
# the shop: the streaming replica (docker-compose.yml service `replica`)
host    replication     shop_replicator samenet         scram-sha-256
HBA
