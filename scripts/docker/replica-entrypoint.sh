#!/usr/bin/env bash
# Entrypoint of the `replica` service in docker-compose.yml: a streaming
# replica of `primary`, built on first start, then the stock image's
# entrypoint, which starts it as a hot standby.
#
# First start (no PG_VERSION in the data volume): copy the primary with
#   pg_basebackup -R -X stream -C -S shop_replica
#   -R  writes standby.signal and primary_conninfo, so the copy starts as a standby
#   -X stream  streams the WAL written during the copy, so the copy is consistent
#   -C -S  creates the physical replication slot `shop_replica` on the primary:
#          the primary then keeps every WAL segment until this replica has it.
#          Without a slot (or a restore_command), a checkpoint on the primary can
#          remove WAL the replica still needs, and it stops for good with
#          "requested WAL segment ... has already been removed" (DESIGN.md).
# Later starts: the data volume holds a standby already; it just starts.
#
# To rebuild the replica: docker compose rm -sf replica, remove its volume,
# and `docker compose up -d replica`; the leftover slot is dropped below.
set -euo pipefail

PRIMARY_HOST="${SHOP_PRIMARY_HOST:-primary}"
PRIMARY_PORT="${SHOP_PRIMARY_PORT:-5432}"
SLOT="${SHOP_REPLICA_SLOT:-shop_replica}"
REPLICATOR_PASSWORD="${SHOP_REPLICATOR_PASSWORD:-shop_replicator}"
PGDATA="${PGDATA:-/var/lib/postgresql/data}"

say() { printf 'replica: %s\n' "$*"; }

[ "$(id -u)" = 0 ] || { say "must start as root (the image's default user)"; exit 1; }

# The password lives in the postgres user's ~/.pgpass, not in the data volume:
# libpq reads it both for pg_basebackup and for the standby's WAL receiver,
# and rewriting it on every start means a changed password needs no rebuild.
# In .pgpass, ':' and '\' inside a field must be escaped with '\'.
PGPASS=/var/lib/postgresql/.pgpass
escaped_password="$(printf '%s' "$REPLICATOR_PASSWORD" | sed 's/[\\:]/\\&/g')"
printf '%s:%s:*:shop_replicator:%s\n' "$PRIMARY_HOST" "$PRIMARY_PORT" "$escaped_password" >"$PGPASS"
chown postgres:postgres "$PGPASS"
chmod 600 "$PGPASS"

as_postgres() { gosu postgres "$@"; }

if [ ! -s "$PGDATA/PG_VERSION" ]; then
    # compose starts us once the primary is healthy; this wait covers
    # `docker compose up --no-deps replica` and a primary that is restarting.
    say "waiting for the primary at $PRIMARY_HOST:$PRIMARY_PORT"
    for _ in $(seq 1 60); do
        pg_isready -q -h "$PRIMARY_HOST" -p "$PRIMARY_PORT" && break
        sleep 1
    done
    pg_isready -q -h "$PRIMARY_HOST" -p "$PRIMARY_PORT" \
        || { say "the primary at $PRIMARY_HOST:$PRIMARY_PORT does not answer"; exit 1; }

    # pg_basebackup needs an empty directory; anything here without PG_VERSION
    # is the remains of an interrupted copy, not a cluster.
    mkdir -p "$PGDATA"
    find "$PGDATA" -mindepth 1 -delete
    chown postgres:postgres "$PGDATA"
    chmod 700 "$PGDATA"

    # A slot left by an earlier replica (its volume removed) would make -C
    # fail. An *active* slot is another standby's: leave it, and let -C fail.
    # shop_replicator has REPLICATION, which is what pg_drop_replication_slot asks for.
    as_postgres psql -X -q -v ON_ERROR_STOP=1 -v slot="$SLOT" \
        -h "$PRIMARY_HOST" -p "$PRIMARY_PORT" -U shop_replicator -d postgres -w <<'SQL' >/dev/null
SELECT pg_drop_replication_slot(slot_name)
FROM pg_replication_slots
WHERE slot_name = :'slot' AND NOT active;
SQL

    say "copying the primary with pg_basebackup (slot $SLOT)"
    as_postgres pg_basebackup -h "$PRIMARY_HOST" -p "$PRIMARY_PORT" -U shop_replicator -w \
        -D "$PGDATA" -R -X stream -C -S "$SLOT" --checkpoint=fast
    say "base backup done; starting as a hot standby"
fi

exec docker-entrypoint.sh "$@"
