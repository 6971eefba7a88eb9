#!/usr/bin/env bash
# Start, stop and inspect the project's own services under var/:
# a PostgreSQL primary (127.0.0.1:55432), a streaming replica built from it
# with a physical replication slot (127.0.0.1:55433), pgbouncer in transaction
# mode in front of the primary (127.0.0.1:56432) when its package is
# installed, and Redis if none answers; on request, two small shards for
# chapter 15's postgres_fdw sharding (127.0.0.1:55434 and :55435).
# TCP connections to all of them must use TLS, with a server certificate
# signed by a local CA under var/pg/tls/ (clients verify it: sslmode=verify-full).
#
#   scripts/services.sh up          start everything (idempotent, reuses what exists)
#   scripts/services.sh pgbouncer   start pgbouncer alone, or reload its settings
#   scripts/services.sh workers     a Celery worker and beat, and the catalog
#                                   cache's listener, for `make run`
#   scripts/services.sh shards up   start the two shards (then: manage.py shards setup)
#   scripts/services.sh shards down stop them
#   scripts/services.sh backup full|incr|diff
#                                   a pgBackRest backup of the primary (make backup)
#   scripts/services.sh down        stop what `up`, `workers` and `shards up` started
#   scripts/services.sh status      one line per service
#
# Every step is safe to re-run: an existing cluster is started, not rebuilt.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VAR="$ROOT/var"
PGVAR="$VAR/pg"
PRIMARY="$PGVAR/primary"
REPLICA="$PGVAR/replica"
ARCHIVE="$PGVAR/wal-archive"
TLS="$PGVAR/tls"
PGLOG="$VAR/log"
PRIMARY_PORT="${SHOP_PG_PORT:-55432}"
REPLICA_PORT="${SHOP_PG_REPLICA_PORT:-55433}"
SLOT="shop_replica"
DB_NAME="${SHOP_DB_NAME:-shop}"
# Development passwords; production reads its own from DATABASE_URL etc.
OWNER_PASSWORD="${SHOP_OWNER_PASSWORD:-shop_owner}"
APP_PASSWORD="${SHOP_APP_PASSWORD:-shop_app}"
READONLY_PASSWORD="${SHOP_READONLY_PASSWORD:-shop_readonly}"
LOADER_PASSWORD="${SHOP_LOADER_PASSWORD:-shop_loader}"
REPLICATOR_PASSWORD="${SHOP_REPLICATOR_PASSWORD:-shop_replicator}"
# pgbouncer (chapter 16). The settings read the same numbers from
# PGBOUNCER_PORT, PGBOUNCER_POOL_SIZE and PGBOUNCER_MAX_CLIENT_CONN
# (shop/settings/base.py), with the same defaults.
PGBOUNCER_DIR="$VAR/pgbouncer"
PGBOUNCER_PORT="${SHOP_PGBOUNCER_PORT:-56432}"
PGBOUNCER_POOL_SIZE="${SHOP_PGBOUNCER_POOL_SIZE:-30}"
PGBOUNCER_MAX_CLIENT_CONN="${SHOP_PGBOUNCER_MAX_CLIENT_CONN:-200}"
# A user of pgbouncer's admin console only, unknown to PostgreSQL.
PGBOUNCER_ADMIN_PASSWORD="${SHOP_PGBOUNCER_ADMIN_PASSWORD:-shop_pgbouncer}"
# The shards (chapter 15): two clusters that the primary reaches through
# postgres_fdw. analytics/shards.py reads the same SHOP_SHARD* variables,
# with the same defaults.
SHARD1="$PGVAR/shard1"
SHARD2="$PGVAR/shard2"
SHARD1_PORT="${SHOP_SHARD1_PORT:-55434}"
SHARD2_PORT="${SHOP_SHARD2_PORT:-55435}"
SHARD_PASSWORD="${SHOP_SHARD_PASSWORD:-shop_shard}"
# Unset: the local Redis. Set empty: no Redis at all (the settings' rule too).
REDIS_URL="${REDIS_URL-redis://127.0.0.1:6379/0}"

# pgBackRest's functions (archive_command_line, ensure_archiving,
# cmd_backup) use the variables above.
# shellcheck source=scripts/pgbackrest.sh
source "$ROOT/scripts/pgbackrest.sh"

say() { printf '[services] %s\n' "$*"; }
die() { printf '[services] error: %s\n' "$*" >&2; exit 1; }

# The checkout's path goes into the servers' settings unquoted: the archive
# command is run by a shell, and the include is a quoted string.
case "$ROOT" in
    *[[:space:]\'\"]*) die "the checkout's path '$ROOT' holds a space or a quote, which the servers' settings cannot carry: clone it somewhere else" ;;
esac

find_pg_bin() {
    if [ -n "${PG_BIN:-}" ]; then echo "$PG_BIN"; return; fi
    local d
    for d in /usr/lib/postgresql/*/bin; do
        [ -x "$d/initdb" ] && { echo "$d"; return; }
    done
    command -v initdb >/dev/null 2>&1 && { dirname "$(command -v initdb)"; return; }
    die "PostgreSQL server binaries (initdb, pg_ctl) not found. Install them, e.g. 'apt-get install postgresql-15', or set PG_BIN."
}
PG_BIN="$(find_pg_bin)"

# The schema and the chapters rely on PostgreSQL 15 (a NULLS NOT DISTINCT
# unique constraint; the public schema closed to ordinary roles): an older
# server is refused before it initdb's a cluster under var/.
PG_MIN_MAJOR=15

pg_version() {  # bin directory; prints the version of its pg_ctl, e.g. 15.20
    local out
    out="$("$1/pg_ctl" --version 2>/dev/null)" || return 0
    # "pg_ctl (PostgreSQL) 15.20 (Debian 15.20-0+deb12u1)" -> "15.20"
    out="${out#*) }"
    echo "${out%% *}"
}

pg_major() {  # a version as pg_version prints it; "9.6.24" -> 9, "17beta1" -> 17
    if [[ "$1" =~ ^([0-9]+) ]]; then echo "${BASH_REMATCH[1]}"; fi
}

check_pg_version() {
    local version major d v newest=""
    version="$(pg_version "$PG_BIN")"
    major="$(pg_major "$version")"
    [ -n "$major" ] \
        || die "could not read the version of $PG_BIN/pg_ctl ('pg_ctl --version' failed). Set PG_BIN to the bin directory of a PostgreSQL $PG_MIN_MAJOR+ server, e.g. PG_BIN=/usr/lib/postgresql/$PG_MIN_MAJOR/bin."
    [ "$major" -ge "$PG_MIN_MAJOR" ] && return 0
    # The last match is the newest: the glob sorts 15, 16, 17 in order.
    for d in /usr/lib/postgresql/*/bin; do
        [ -x "$d/initdb" ] || continue
        v="$(pg_major "$(pg_version "$d")")"
        if [ -n "$v" ] && [ "$v" -ge "$PG_MIN_MAJOR" ]; then newest="$d"; fi
    done
    if [ -n "$newest" ]; then
        die "PostgreSQL $version found in $PG_BIN; the shop needs $PG_MIN_MAJOR or newer. A newer server is installed in $newest: point PG_BIN at it, e.g. 'PG_BIN=$newest make run'."
    fi
    die "PostgreSQL $version found in $PG_BIN; the shop needs $PG_MIN_MAJOR or newer. Install a newer server (e.g. 'apt-get install postgresql-$PG_MIN_MAJOR') and point PG_BIN at its bin directory, e.g. 'PG_BIN=/usr/lib/postgresql/$PG_MIN_MAJOR/bin make run'."
}

# PostgreSQL refuses to run as root: as root, run its binaries as `postgres`.
if [ "$(id -u)" = 0 ]; then
    id postgres >/dev/null 2>&1 || die "running as root needs a 'postgres' system user (apt-get install postgresql creates it)"
    as_pg() { runuser -u postgres -- "$@"; }
    PG_USER=postgres
else
    as_pg() { "$@"; }
    PG_USER="$(id -un)"
fi

# Unix sockets have a ~107 byte path limit; deep clones fall back to /tmp.
SOCKDIR="$PGVAR/run"
if [ ${#SOCKDIR} -gt 80 ]; then SOCKDIR="/tmp/shop-pg-$(printf '%s' "$ROOT" | md5sum | cut -c1-8)"; fi

psql_admin() {  # psql as the cluster superuser over the primary's socket
    as_pg "$PG_BIN/psql" -X -q -v ON_ERROR_STOP=1 -h "$SOCKDIR" -p "$PRIMARY_PORT" -U postgres -d postgres "$@"
}

ensure_reachable() {
    # The postgres user must traverse every parent of var/ (CI clones elsewhere).
    [ "$PG_USER" = postgres ] && [ "$(id -u)" = 0 ] || return 0
    local d="$ROOT"
    while [ "$d" != "/" ]; do
        if ! runuser -u postgres -- test -x "$d"; then
            say "granting o+x on $d so the postgres user can reach var/"
            chmod o+x "$d"
        fi
        d="$(dirname "$d")"
    done
}

prepare_dirs() {
    local d
    mkdir -p "$PGVAR" "$ARCHIVE" "$PGLOG" "$SOCKDIR"
    if [ "$(id -u)" = 0 ]; then
        chown postgres: "$PGVAR" "$ARCHIVE" "$SOCKDIR"
        chown postgres: "$PGLOG"
        # Only a data directory that is not the postgres user's yet: a running
        # cluster creates and removes files under it while chown walks it
        # (a test dropping its database was enough to fail `up`).
        for d in "$PRIMARY" "$REPLICA" "$SHARD1" "$SHARD2"; do
            if [ -d "$d" ] && [ "$(stat -c %U "$d")" != postgres ]; then
                chown -R postgres: "$d"
            fi
        done
    fi
    chmod 700 "$PGVAR" || true
    chmod 755 "$PGLOG" || true
}

ensure_tls_files() {
    # A CA of this checkout's own, made once; clients trust only it (ca.crt).
    command -v openssl >/dev/null 2>&1 \
        || die "openssl not found: it makes the local CA for TLS. Install it, e.g. 'apt-get install openssl'."
    mkdir -p "$TLS"
    chmod 755 "$TLS"
    if [ ! -f "$TLS/ca.crt" ] || [ ! -f "$TLS/ca.key" ]; then
        say "creating a local CA in $TLS"
        rm -f "$TLS/server.crt" "$TLS/server.key"
        openssl req -x509 -new -nodes -newkey rsa:2048 -sha256 -days 3650 \
            -subj "/CN=shop local development CA" \
            -keyout "$TLS/ca.key" -out "$TLS/ca.crt" 2>/dev/null
        chmod 600 "$TLS/ca.key"
    fi
    if [ ! -f "$TLS/server.crt" ] || [ ! -f "$TLS/server.key" ]; then
        say "creating the server certificate for 127.0.0.1 / localhost"
        openssl req -new -nodes -newkey rsa:2048 -sha256 -subj "/CN=localhost" \
            -keyout "$TLS/server.key" -out "$TLS/server.csr" 2>/dev/null
        printf '%s\n' "subjectAltName = IP:127.0.0.1, DNS:localhost" \
            "basicConstraints = CA:FALSE" "extendedKeyUsage = serverAuth" >"$TLS/server.ext"
        openssl x509 -req -sha256 -days 825 -in "$TLS/server.csr" \
            -CA "$TLS/ca.crt" -CAkey "$TLS/ca.key" -CAcreateserial \
            -extfile "$TLS/server.ext" -out "$TLS/server.crt" 2>/dev/null
        rm -f "$TLS/server.csr" "$TLS/server.ext"
    fi
    # PostgreSQL refuses a key that others can read, or owned by someone else.
    chmod 600 "$TLS/server.key"
    chmod 644 "$TLS/ca.crt" "$TLS/server.crt"
    [ "$(id -u)" = 0 ] && chown "$PG_USER": "$TLS/server.key" "$TLS/server.crt"
    return 0
}

# --8<-- [start:tls_conf]
ensure_tls_conf() {  # data directory; prints "changed" when a reload is needed
    local dir="$1" changed=""
    if ! grep -q "^ssl = on" "$dir/postgresql.conf"; then
        cat >>"$dir/postgresql.conf" <<CONF
# TLS for every TCP connection (scripts/services.sh, var/pg/tls/).
ssl = on
ssl_cert_file = '$TLS/server.crt'
ssl_key_file = '$TLS/server.key'
CONF
        changed=1
    fi
    # Loopback logins and replication only over TLS: no plaintext TCP at all.
    if grep -qE '^host[[:space:]]' "$dir/pg_hba.conf"; then
        # As the server's user: sed -i replaces the file, and with it the owner.
        as_pg sed -i -E 's/^host([[:space:]])/hostssl\1/' "$dir/pg_hba.conf"
        changed=1
    fi
    if [ -n "$changed" ]; then echo changed; fi
}
# --8<-- [end:tls_conf]

reload_if_running() {  # data directory, what ensure_tls_conf printed
    if [ -n "$2" ] && pg_running "$1"; then
        say "reloading $(basename "$1") for its new settings"
        as_pg "$PG_BIN/pg_ctl" -D "$1" reload >/dev/null
    fi
}

# pgaudit (chapter 23), when its package is installed (Debian:
# postgresql-15-pgaudit): the server must preload it, so a running cluster
# made before it is restarted once.
pgaudit_installed() {
    local libdir
    libdir="$("$PG_BIN/pg_config" --pkglibdir 2>/dev/null || echo "$PG_BIN/../lib")"
    [ -f "$libdir/pgaudit.so" ]
}

ensure_pgaudit_conf() {  # data directory; prints "changed" when a restart is needed
    local dir="$1"
    pgaudit_installed || return 0
    grep -q "^pgaudit.role" "$dir/postgresql.conf" && return 0
    cat >>"$dir/postgresql.conf" <<CONF
# pgaudit (chapter 23, scripts/services.sh). Later lines win, so this list
# replaces the one above. Every session's DDL and role changes are logged;
# so is, by object, whatever the shop_auditor role holds privileges on
# (shop/accounts/sql/audit/ and orders/sql/audit/pgaudit_object_grants_v01.sql). Parameters are never
# logged: the app binds encryption keys as parameters (shop/crypto.py).
shared_preload_libraries = 'pg_stat_statements,pgaudit'
pgaudit.log = 'ddl, role'
pgaudit.log_catalog = off
pgaudit.log_parameter = off
pgaudit.role = 'shop_auditor'
CONF
    echo changed
}

# The primary's logging (chapter 24: what pgBadger reads), kept in the
# repository in scripts/pg/logging.conf and included by path, so it is read
# where it is explained. Every setting in it takes effect on a reload.
ensure_logging_conf() {  # data directory; prints "changed" when a reload is needed
    local dir="$1" conf="$ROOT/scripts/pg/logging.conf"
    local line="include_if_exists = '$conf'" stamp="$dir/../.logging-conf-applied"
    if ! grep -qxF "$line" "$dir/postgresql.conf"; then
        printf '# Logging for pgBadger (scripts/services.sh).\n%s\n' "$line" >>"$dir/postgresql.conf"
        rm -f "$stamp"
    fi
    # An edit of the file since it was last applied needs a reload too.
    if [ ! -f "$stamp" ] || [ "$conf" -nt "$stamp" ]; then echo changed; fi
}

# After the reload (or for a cluster not running yet, which reads the file
# when it starts): the file as it is now is applied.
mark_logging_applied() {  # data directory
    touch "$1/../.logging-conf-applied"
}
restart_primary_if_running() {  # what ensure_pgaudit_conf printed
    if [ -n "$1" ] && pg_running "$PRIMARY"; then
        restart_cluster "$PRIMARY" "$PRIMARY_PORT" primary "to load pgaudit"
    fi
}

restart_cluster() {  # data directory, port, name, why
    say "restarting the $3 $4"
    as_pg "$PG_BIN/pg_ctl" -D "$1" -l "$PGLOG/$3.log" -m fast -w -t 60 restart >/dev/null \
        || die "the $3 failed to restart; see $PGLOG/$3.log"
    wait_ready "$2"
}

pg_running() { as_pg "$PG_BIN/pg_ctl" -D "$1" status >/dev/null 2>&1; }

# The server's memory (chapter 18), kept in scripts/pg/memory.conf and
# included by path from the primary's and the replica's postgresql.conf
# (pg_basebackup copies the primary's line to a new replica).
ensure_memory_conf() {  # data directory
    local line="include_if_exists = '$ROOT/scripts/pg/memory.conf'"
    grep -qxF "$line" "$1/postgresql.conf" && return 0
    printf '# The server'"'"'s memory (scripts/services.sh).\n%s\n' "$line" >>"$1/postgresql.conf"
}

# A running server whose values differ from scripts/pg/memory.conf's gets
# them: a restart for shared_buffers (read only when the server starts), a
# reload for the others. scripts/sql/memory_pending.sql says which, from
# pg_file_settings, which reads the files as they are now.
restart_if_memory_pending() {  # data directory, port, name
    local dir="$1" port="$2" name="$3" pending
    pg_running "$dir" || return 0
    # On stdin: the query is read by this shell, not by the postgres user.
    pending="$(as_pg "$PG_BIN/psql" -X -qtA -v ON_ERROR_STOP=1 -h "$SOCKDIR" -p "$port" \
        -U postgres -d postgres <"$ROOT/scripts/sql/memory_pending.sql")" \
        || die "could not read pg_file_settings on the $name (port $port)"
    case "$pending" in
        restart)
            restart_cluster "$dir" "$port" "$name" "for its new shared_buffers (scripts/pg/memory.conf)"
            ;;
        reload)
            reload_if_running "$dir" changed
            ;;
    esac
}

wait_ready() {  # port
    local i
    for i in $(seq 1 60); do
        "$PG_BIN/pg_isready" -q -h 127.0.0.1 -p "$1" && return 0
        sleep 0.5
    done
    die "PostgreSQL on port $1 did not become ready; see $PGLOG/"
}

init_primary() {
    [ -f "$PRIMARY/PG_VERSION" ] && return 0
    say "initdb primary in $PRIMARY"
    as_pg "$PG_BIN/initdb" -D "$PRIMARY" -U postgres --auth-local=trust \
        --auth-host=scram-sha-256 -E UTF8 --locale=C.UTF-8 >/dev/null
    cat >>"$PRIMARY/postgresql.conf" <<CONF

# --- the shop's settings (scripts/services.sh) ---
listen_addresses = '127.0.0.1'
port = $PRIMARY_PORT
unix_socket_directories = '$SOCKDIR'
wal_level = replica
max_wal_senders = 10
max_replication_slots = 10
hot_standby = on
hot_standby_feedback = on
wal_keep_size = '256MB'
# WAL archive for point-in-time recovery (chapter 24) and replica catch-up;
# the command comes once the backup repository is ready
# (scripts/pgbackrest.sh: ensure_archiving).
archive_mode = on
shared_preload_libraries = 'pg_stat_statements'
max_connections = 200
fsync = on
log_destination = 'stderr'
logging_collector = off
log_min_duration_statement = -1
CONF
    cat >>"$PRIMARY/pg_hba.conf" <<HBA
# the shop: replication for the standby, password logins on loopback
hostssl replication     shop_replicator 127.0.0.1/32    scram-sha-256
HBA
}

start_primary() {
    if pg_running "$PRIMARY"; then say "primary already running on $PRIMARY_PORT"; return 0; fi
    say "starting primary on 127.0.0.1:$PRIMARY_PORT"
    as_pg "$PG_BIN/pg_ctl" -D "$PRIMARY" -l "$PGLOG/primary.log" -w -t 60 start >/dev/null \
        || die "primary failed to start; see $PGLOG/primary.log"
    wait_ready "$PRIMARY_PORT"
}

ensure_roles() {
    psql_admin -v owner_pw="$OWNER_PASSWORD" -v app_pw="$APP_PASSWORD" \
        -v ro_pw="$READONLY_PASSWORD" -v loader_pw="$LOADER_PASSWORD" -v repl_pw="$REPLICATOR_PASSWORD" \
        -v monitor_pw="${SHOP_MONITOR_PASSWORD:-shop_monitor}" \
        -f "$ROOT/scripts/sql/roles.sql"
    if ! psql_admin -tAc "SELECT 1 FROM pg_database WHERE datname = '$DB_NAME'" | grep -q 1; then
        say "creating database $DB_NAME owned by shop_owner"
        as_pg "$PG_BIN/createdb" -h "$SOCKDIR" -p "$PRIMARY_PORT" -U postgres -O shop_owner "$DB_NAME"
    fi
    psql_admin -d template1 -f "$ROOT/scripts/sql/database.sql"
    psql_admin -d "$DB_NAME" -f "$ROOT/scripts/sql/database.sql"
}

init_replica() {
    if [ -f "$REPLICA/PG_VERSION" ]; then return 0; fi
    say "building the streaming replica with pg_basebackup (slot $SLOT)"
    # A slot left over from an earlier replica would make -C fail.
    psql_admin -tAc "SELECT pg_drop_replication_slot('$SLOT') FROM pg_replication_slots WHERE slot_name = '$SLOT'" >/dev/null
    local pass="$PGVAR/.pgpass"
    printf '127.0.0.1:%s:*:shop_replicator:%s\n' "$PRIMARY_PORT" "$REPLICATOR_PASSWORD" >"$pass"
    chmod 600 "$pass"
    [ "$(id -u)" = 0 ] && chown postgres: "$pass"
    as_pg env PGPASSFILE="$pass" "$PG_BIN/pg_basebackup" -h 127.0.0.1 -p "$PRIMARY_PORT" \
        -U shop_replicator -D "$REPLICA" -R -X stream -C -S "$SLOT" -c fast
    cat >>"$REPLICA/postgresql.auto.conf" <<CONF
port = $REPLICA_PORT
archive_mode = off
CONF
    # primary_conninfo needs the password file at run time as well.
    sed -i "s|^primary_conninfo = '|primary_conninfo = 'passfile=$pass |" "$REPLICA/postgresql.auto.conf"
}

start_replica() {
    if pg_running "$REPLICA"; then say "replica already running on $REPLICA_PORT"; return 0; fi
    say "starting replica on 127.0.0.1:$REPLICA_PORT"
    as_pg "$PG_BIN/pg_ctl" -D "$REPLICA" -l "$PGLOG/replica.log" -w -t 60 start >/dev/null \
        || die "replica failed to start; see $PGLOG/replica.log"
    wait_ready "$REPLICA_PORT"
}

redis_host_port() {
    local hp="${REDIS_URL#*://}"; hp="${hp#*@}"; hp="${hp%%/*}"
    echo "${hp%%:*} ${hp##*:}"
}

ensure_redis() {
    if [ -z "$REDIS_URL" ]; then
        say "REDIS_URL is empty: running without Redis (a local-memory cache, eager Celery)"
        return 0
    fi
    local host port
    read -r host port < <(redis_host_port)
    [ "$port" = "$host" ] && port=6379
    if (exec 3<>"/dev/tcp/$host/$port") 2>/dev/null && redis_ping "$host" "$port"; then
        say "redis answers at $host:$port"; return 0
    fi
    if ! command -v redis-server >/dev/null 2>&1; then
        say "WARNING: no Redis at $REDIS_URL and no redis-server binary: install redis-server, or export REDIS_URL= (empty) to run without Redis (a local-memory cache and eager Celery)"
        return 0
    fi
    say "starting redis-server on $host:$port"
    mkdir -p "$VAR/redis"
    redis-server --daemonize yes --bind "$host" --port "$port" --save "" --appendonly no \
        --dir "$VAR/redis" --pidfile "$VAR/redis/redis.pid" --logfile "$PGLOG/redis.log"
    local i
    for i in $(seq 1 20); do redis_ping "$host" "$port" && return 0; sleep 0.25; done
    die "redis-server did not answer on $host:$port; see $PGLOG/redis.log"
}

redis_ping() {
    if command -v redis-cli >/dev/null 2>&1; then
        redis-cli -h "$1" -p "$2" ping 2>/dev/null | grep -q PONG
    else
        (exec 3<>"/dev/tcp/$1/$2" && printf 'PING\r\n' >&3 && head -c 5 <&3 | grep -q PONG) 2>/dev/null
    fi
}

wait_replica_streaming() {
    local i
    for i in $(seq 1 60); do
        if psql_admin -tAc "SELECT 1 FROM pg_stat_replication WHERE application_name <> '' AND state = 'streaming'" | grep -q 1; then
            return 0
        fi
        sleep 0.5
    done
    die "the replica is not streaming; see $PGLOG/replica.log"
}

# --- pgbouncer (chapter 16) --------------------------------------------------
# Transaction pooling in front of the primary: a server connection belongs to
# a client for one transaction, then serves the next client. Debian's package
# (bookworm: 1.18) also ships a system service on 6432; this one is the
# project's own, on its own port, config and pid file under var/pgbouncer/.
find_pgbouncer() {
    command -v pgbouncer 2>/dev/null && return 0
    [ -x /usr/sbin/pgbouncer ] && echo /usr/sbin/pgbouncer
    return 0
}

pgbouncer_version() {  # "PgBouncer 1.18.0" -> 1.18.0
    local out
    out="$("$1" --version 2>/dev/null)" || true
    out="${out%%$'\n'*}"
    echo "${out##* }"
}

pgbouncer_pid() {  # prints the pid of the running pgbouncer, if any
    local pidfile="$PGBOUNCER_DIR/pgbouncer.pid"
    [ -f "$pidfile" ] && kill -0 "$(cat "$pidfile")" 2>/dev/null && cat "$pidfile"
    return 0
}

# Prints "changed" when the file's content is new; the file is postgres's, 600.
install_pgbouncer_file() {  # path, content
    if [ -f "$1" ] && [ "$(cat "$1")" = "$2" ]; then return 0; fi
    (umask 077; printf '%s\n' "$2" >"$1.new")
    [ "$(id -u)" = 0 ] && chown "$PG_USER": "$1.new"
    mv "$1.new" "$1"
    echo changed
}

pgbouncer_ini() {  # version
    local major minor
    IFS=. read -r major minor _ <<<"$1"
    major="${major:-0}" minor="${minor:-0}"
    cat <<INI
; Written by scripts/services.sh on every 'up': edit the script, not this file.
[databases]
; Any database a client names, on the primary under the same name: the
; development database and every test run's test_shop_*.
* = host=127.0.0.1 port=$PRIMARY_PORT

[pgbouncer]
listen_addr = 127.0.0.1
listen_port = $PGBOUNCER_PORT
unix_socket_dir = $SOCKDIR
pidfile = $PGBOUNCER_DIR/pgbouncer.pid
logfile = $PGLOG/pgbouncer.log

; A server connection serves one transaction of a client, then another
; client's. What a session keeps (SET, session-level set_config(), prepared
; statements, cursors WITH HOLD, advisory locks) stays with the server
; connection and meets the next client: server_reset_query runs only in
; session mode (tests/shop/test_pgbouncer.py shows each case).
pool_mode = transaction
; Server connections per database and user. The settings' budget
; (shop/settings/base.py, PGBOUNCER_POOL_SIZE) counts them against the
; primary's max_connections; the widest race in the test suite holds 25
; transactions open at once, and each of them needs a server connection.
default_pool_size = $PGBOUNCER_POOL_SIZE
; Client connections: every process's pool of 'default' (the settings'
; budget, PGBOUNCER_MAX_CLIENT_CONN).
max_client_conn = $PGBOUNCER_MAX_CLIENT_CONN
; A client waits this long for a server connection, as long as a request
; waits for the app's own pool (DATABASE_POOL_TIMEOUT), then is cut off.
query_wait_timeout = 10
; A primary that refuses logins (a restart) is tried again each second, as
; the app's pool does (DATABASE_POOL_RECONNECT_TIMEOUT); meanwhile clients
; get an error at once instead of waiting.
server_login_retry = 1
; Idle server connections to a database are closed after a minute, so a test
; run that was killed cannot keep its test database from being dropped for
; long (the suite's teardown releases them at once: shop/pgbouncer.py).
server_idle_timeout = 60

; Passwords in plain text, readable by the postgres user only, as
; var/pg/.pgpass: roles.sql sets each password again at every 'up', with a
; new salt, and SCRAM verifiers copied from the server would stop matching it.
auth_type = scram-sha-256
auth_file = $PGBOUNCER_DIR/userlist.txt
admin_users = shop_pgbouncer

; TLS on both sides, with the local CA (var/pg/tls/): clients must use TLS
; and can verify pgbouncer as they verify the servers (the same certificate,
; for 127.0.0.1 and localhost); pgbouncer verifies the primary's certificate
; and its name.
client_tls_sslmode = require
client_tls_cert_file = $TLS/server.crt
client_tls_key_file = $TLS/server.key
server_tls_sslmode = verify-full
server_tls_ca_file = $TLS/ca.crt
INI
    # 1.21 can keep prepared statements per server connection, and 1.22
    # turns it on by default. Off on every version, so that each behaves as
    # Debian bookworm's 1.18, which cannot: the app never prepares anyway
    # (prepare_threshold None, shop/settings/base.py).
    if [ "$major" -gt 1 ] || { [ "$major" -eq 1 ] && [ "$minor" -ge 21 ]; }; then
        echo "max_prepared_statements = 0"
    fi
}

pgbouncer_userlist() {
    printf '"%s" "%s"\n' \
        shop_app "$APP_PASSWORD" \
        shop_pgbouncer "$PGBOUNCER_ADMIN_PASSWORD"
}

start_pgbouncer() {
    local bin version pid changed=""
    bin="$(find_pgbouncer)"
    if [ -z "$bin" ]; then
        say "WARNING: pgbouncer is not installed: the app connects to the primary directly, and the pgbouncer lab and tests cannot run. Install it, e.g. 'apt-get install pgbouncer', and run 'scripts/services.sh up' again."
        return 0
    fi
    version="$(pgbouncer_version "$bin")"
    mkdir -p "$PGBOUNCER_DIR"
    chmod 700 "$PGBOUNCER_DIR"
    [ "$(id -u)" = 0 ] && chown "$PG_USER": "$PGBOUNCER_DIR"
    changed+="$(install_pgbouncer_file "$PGBOUNCER_DIR/pgbouncer.ini" "$(pgbouncer_ini "$version")")"
    changed+="$(install_pgbouncer_file "$PGBOUNCER_DIR/userlist.txt" "$(pgbouncer_userlist)")"
    pid="$(pgbouncer_pid)"
    if [ -n "$pid" ]; then
        if [ -n "$changed" ]; then
            # Ports and file locations need a restart ('down', then 'up');
            # pool sizes, timeouts and the users are reloaded.
            say "reloading pgbouncer (pid $pid) for its new settings"
            kill -HUP "$pid"
        else
            say "pgbouncer $version already running on $PGBOUNCER_PORT"
        fi
        return 0
    fi
    say "starting pgbouncer $version on 127.0.0.1:$PGBOUNCER_PORT (transaction mode, in front of $PRIMARY_PORT)"
    as_pg "$bin" -d -q "$PGBOUNCER_DIR/pgbouncer.ini" \
        || die "pgbouncer failed to start; see $PGLOG/pgbouncer.log"
    local i
    for i in $(seq 1 40); do
        # 0: accepting, 1: answering but refusing this probe; both mean up.
        local rc=0
        "$PG_BIN/pg_isready" -q -h 127.0.0.1 -p "$PGBOUNCER_PORT" || rc=$?
        if [ "$rc" -le 1 ]; then return 0; fi
        sleep 0.25
    done
    die "pgbouncer did not answer on 127.0.0.1:$PGBOUNCER_PORT; see $PGLOG/pgbouncer.log"
}

stop_pgbouncer() {
    local pid i
    pid="$(pgbouncer_pid)"
    [ -n "$pid" ] || return 0
    say "stopping pgbouncer (pid $pid)"
    # SIGINT lets running transactions finish; SIGTERM if they do not.
    kill -INT "$pid"
    for i in $(seq 1 20); do kill -0 "$pid" 2>/dev/null || return 0; sleep 0.25; done
    kill -TERM "$pid" 2>/dev/null || true
}

cmd_up() {
    check_pg_version
    ensure_reachable
    prepare_dirs
    ensure_tls_files
    init_primary
    # Also upgrades a cluster made before TLS: settings appended, then reloaded.
    reload_if_running "$PRIMARY" "$(ensure_tls_conf "$PRIMARY")"
    restart_primary_if_running "$(ensure_pgaudit_conf "$PRIMARY")"
    reload_if_running "$PRIMARY" "$(ensure_logging_conf "$PRIMARY")" && mark_logging_applied "$PRIMARY"
    ensure_memory_conf "$PRIMARY"
    restart_if_memory_pending "$PRIMARY" "$PRIMARY_PORT" primary
    start_primary
    ensure_roles
    ensure_archiving
    init_replica
    # pg_basebackup copies the primary's files, so this is a no-op for a new replica.
    reload_if_running "$REPLICA" "$(ensure_tls_conf "$REPLICA")"
    ensure_memory_conf "$REPLICA"
    restart_if_memory_pending "$REPLICA" "$REPLICA_PORT" replica
    start_replica
    wait_replica_streaming
    start_pgbouncer
    ensure_redis
    say "ready: primary 127.0.0.1:$PRIMARY_PORT, replica 127.0.0.1:$REPLICA_PORT, database $DB_NAME"
}

# pgbouncer alone, for a primary that `up` already started.
cmd_pgbouncer() {
    ensure_tls_files
    pg_running "$PRIMARY" || die "the primary is not running: start everything with 'scripts/services.sh up'"
    start_pgbouncer
}

# Celery for `make run`: a worker, and beat, which sends the periodic tasks
# (checkout recovery every 5 minutes, the idempotency-key purge hourly).
# Detached, with pid files, so `down` stops them; started once.
start_celery() {  # worker | beat
    local what="$1" pidfile="$VAR/run/celery-$1.pid"
    if [ -f "$pidfile" ] && kill -0 "$(cat "$pidfile")" 2>/dev/null; then
        say "celery $what already running (pid $(cat "$pidfile"))"
        return 0
    fi
    local args=("$what" --detach --pidfile "$pidfile" --loglevel INFO
        --logfile "$VAR/log/celery-$what.log")
    if [ "$what" = beat ]; then args+=(--schedule "$VAR/run/celerybeat-schedule"); fi
    if [ "$what" = worker ]; then args+=(--concurrency 2); fi
    "$ROOT/.venv/bin/celery" --app shop "${args[@]}"
    say "celery $what started (log: var/log/celery-$what.log)"
}

cmd_workers() {
    if [ -z "$REDIS_URL" ]; then
        say "REDIS_URL is empty: no Celery worker; tasks run inside the request"
        return 0
    fi
    mkdir -p "$VAR/run" "$VAR/log"
    start_celery worker
    start_celery beat
    start_cache_listener
}

# The catalog cache's listener (`manage.py cache_listen`,
# catalog/cache/listener.py): it retires the cached pages that writes made
# in SQL change (checkout, recovery, psql), from their NOTIFY. Started once,
# with a pid file, so `down` stops it.
start_cache_listener() {
    local pidfile="$VAR/run/cache-listen.pid"
    if [ -f "$pidfile" ] && kill -0 "$(cat "$pidfile")" 2>/dev/null; then
        say "cache listener already running (pid $(cat "$pidfile"))"
        return 0
    fi
    nohup "$ROOT/.venv/bin/python" "$ROOT/manage.py" cache_listen \
        >>"$VAR/log/cache-listen.log" 2>&1 </dev/null &
    echo $! >"$pidfile"
    say "cache listener started (log: var/log/cache-listen.log)"
}

stop_cache_listener() {
    local pidfile="$VAR/run/cache-listen.pid" pid
    [ -f "$pidfile" ] || return 0
    pid="$(cat "$pidfile")"
    if kill -0 "$pid" 2>/dev/null; then
        say "stopping the cache listener (pid $pid)"
        kill -TERM "$pid"
        for _ in 1 2 3 4 5 6 7 8 9 10; do kill -0 "$pid" 2>/dev/null || break; sleep 0.2; done
    fi
    rm -f "$pidfile"
}

stop_celery() {
    local what pidfile pid
    for what in beat worker; do
        pidfile="$VAR/run/celery-$what.pid"
        [ -f "$pidfile" ] || continue
        pid="$(cat "$pidfile")"
        if kill -0 "$pid" 2>/dev/null; then
            say "stopping celery $what (pid $pid)"
            kill -TERM "$pid"
            # A warm shutdown finishes the task at hand (acks_late requeues
            # it otherwise); give it a few seconds.
            for _ in 1 2 3 4 5 6 7 8 9 10; do kill -0 "$pid" 2>/dev/null || break; sleep 0.5; done
        fi
        rm -f "$pidfile"
    done
}

# --- shards (chapter 15) -----------------------------------------------------
# Two small clusters, each holding one hash partition of the order archive.
# The primary reaches them through postgres_fdw (`manage.py shards setup`
# makes the foreign servers, the shard-side tables and the partitioned
# table); nothing else in the shop needs them, so `up` leaves them alone.
init_shard() {  # data directory, port
    local dir="$1" port="$2"
    [ -f "$dir/PG_VERSION" ] && return 0
    say "initdb $(basename "$dir") in $dir"
    as_pg "$PG_BIN/initdb" -D "$dir" -U postgres --auth-local=trust \
        --auth-host=scram-sha-256 -E UTF8 --locale=C.UTF-8 >/dev/null
    cat >>"$dir/postgresql.conf" <<CONF

# --- a shard of the order archive (scripts/services.sh, chapter 15) ---
listen_addresses = '127.0.0.1'
port = $port
unix_socket_directories = '$SOCKDIR'
# Small: a shard here holds a lab's few thousand rows, not a shop's orders.
shared_buffers = '16MB'
# Every primary backend that touches a shard keeps its own connection to it
# for the rest of its life (postgres_fdw caches them), pooled ones included.
max_connections = 60
# No standby and no WAL archive: a shard is rebuilt from nothing by
# 'shards up' and 'manage.py shards setup'.
wal_level = minimal
max_wal_senders = 0
# The sharding lab counts the EXPLAINs that use_remote_estimate sends here.
shared_preload_libraries = 'pg_stat_statements'
CONF
}

start_shard() {  # data directory, port
    local dir="$1" port="$2" name
    name="$(basename "$1")"
    if pg_running "$dir"; then say "$name already running on $port"; return 0; fi
    say "starting $name on 127.0.0.1:$port"
    as_pg "$PG_BIN/pg_ctl" -D "$dir" -l "$PGLOG/$name.log" -w -t 60 start >/dev/null \
        || die "$name failed to start; see $PGLOG/$name.log"
    wait_ready "$port"
}

# The role the primary's user mappings log in as, and the development
# database's shard (the test databases' shards are made by `manage.py shards
# setup`). Password logins (scram-sha-256 over TLS, as initdb's
# --auth-host above sets them), not trust: postgres_fdw refuses a connection
# made for a role that is not a superuser, such as shop_app, unless the shard
# asked for the password, so that no role can borrow the primary's own
# identity on another server.
ensure_shard_role() {  # port
    as_pg "$PG_BIN/psql" -X -q -v ON_ERROR_STOP=1 -h "$SOCKDIR" -p "$1" -U postgres -d postgres \
        -v shard_pw="$SHARD_PASSWORD" -v db="$DB_NAME" <<'SQL'
SELECT 'CREATE ROLE shop_shard' WHERE NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'shop_shard') \gexec
-- Owns the shard's tables; never a superuser, so the primary's mappings
-- hand its app no more than these tables.
ALTER ROLE shop_shard LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION NOBYPASSRLS PASSWORD :'shard_pw';
SELECT format('CREATE DATABASE %I OWNER shop_shard', :'db')
WHERE NOT EXISTS (SELECT FROM pg_database WHERE datname = :'db') \gexec
SQL
}

cmd_shards_up() {
    check_pg_version
    ensure_reachable
    prepare_dirs
    ensure_tls_files
    local shard dir port
    for shard in "$SHARD1:$SHARD1_PORT" "$SHARD2:$SHARD2_PORT"; do
        dir="${shard%:*}" port="${shard##*:}"
        init_shard "$dir" "$port"
        reload_if_running "$dir" "$(ensure_tls_conf "$dir")"
        start_shard "$dir" "$port"
        ensure_shard_role "$port"
    done
    say "shards ready: 127.0.0.1:$SHARD1_PORT and 127.0.0.1:$SHARD2_PORT; next: python manage.py shards setup"
}

cmd_shards_down() {
    local d
    for d in "$SHARD2" "$SHARD1"; do
        if [ -f "$d/PG_VERSION" ] && pg_running "$d"; then
            say "stopping $(basename "$d")"
            as_pg "$PG_BIN/pg_ctl" -D "$d" -m fast -w stop >/dev/null
        fi
    done
}

cmd_down() {
    # The web server and the workers first: they hold connections to the
    # databases.
    stop_celery
    stop_cache_listener
    if [ -f "$VAR/run/web.pid" ]; then
        local pid; pid="$(cat "$VAR/run/web.pid")"
        if kill -0 "$pid" 2>/dev/null; then
            say "stopping the web server (pid $pid)"
            # runserver's autoreloader serves from a child process: stop it too.
            pkill -TERM -P "$pid" 2>/dev/null || true
            kill "$pid"
        fi
        rm -f "$VAR/run/web.pid"
    fi
    # Before the primary: its server connections would otherwise be cut
    # under it.
    stop_pgbouncer
    cmd_shards_down
    local d
    for d in "$REPLICA" "$PRIMARY"; do
        if [ -f "$d/PG_VERSION" ] && pg_running "$d"; then
            say "stopping $(basename "$d")"
            as_pg "$PG_BIN/pg_ctl" -D "$d" -m fast -w stop >/dev/null
        fi
    done
    if [ -f "$VAR/redis/redis.pid" ]; then
        local rpid; rpid="$(cat "$VAR/redis/redis.pid")"
        if kill -0 "$rpid" 2>/dev/null; then say "stopping redis (pid $rpid)"; kill "$rpid"; fi
        rm -f "$VAR/redis/redis.pid"
    fi
}

cmd_status() {
    local d
    for d in "$PRIMARY" "$REPLICA"; do
        if [ -f "$d/PG_VERSION" ] && pg_running "$d"; then echo "$(basename "$d"): running"; else echo "$(basename "$d"): stopped"; fi
    done
    for d in "$SHARD1" "$SHARD2"; do
        if [ ! -f "$d/PG_VERSION" ]; then echo "$(basename "$d"): not created (scripts/services.sh shards up)"
        elif pg_running "$d"; then echo "$(basename "$d"): running"
        else echo "$(basename "$d"): stopped"; fi
    done
    if [ -n "$(pgbouncer_pid)" ]; then
        echo "pgbouncer: running on $PGBOUNCER_PORT (pid $(pgbouncer_pid))"
    elif [ -z "$(find_pgbouncer)" ]; then
        echo "pgbouncer: not installed"
    else
        echo "pgbouncer: stopped"
    fi
    local what pidfile
    for what in worker beat; do
        pidfile="$VAR/run/celery-$what.pid"
        if [ -f "$pidfile" ] && kill -0 "$(cat "$pidfile")" 2>/dev/null; then
            echo "celery $what: running (pid $(cat "$pidfile"))"
        else
            echo "celery $what: stopped"
        fi
    done
    if [ -f "$VAR/run/cache-listen.pid" ] && kill -0 "$(cat "$VAR/run/cache-listen.pid")" 2>/dev/null; then
        echo "cache listener: running (pid $(cat "$VAR/run/cache-listen.pid"))"
    else
        echo "cache listener: stopped"
    fi
    if [ -z "$REDIS_URL" ]; then echo "redis: not used (REDIS_URL is empty)"; return 0; fi
    local host port; read -r host port < <(redis_host_port)
    if redis_ping "$host" "$port"; then echo "redis: running at $host:$port"; else echo "redis: not answering at $host:$port"; fi
}

case "${1:-}" in
    up) cmd_up ;;
    pgbouncer) cmd_pgbouncer ;;
    workers) cmd_workers ;;
    shards)
        case "${2:-}" in
            up) cmd_shards_up ;;
            down) cmd_shards_down ;;
            *) echo "usage: $0 shards up|down" >&2; exit 2 ;;
        esac ;;
    backup) cmd_backup "${2:-incr}" ;;
    down) cmd_down ;;
    status) cmd_status ;;
    *) echo "usage: $0 up|pgbouncer|workers|shards up|shards down|backup full|incr|diff|down|status" >&2; exit 2 ;;
esac
