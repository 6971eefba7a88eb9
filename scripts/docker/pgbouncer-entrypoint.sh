#!/usr/bin/env bash
# Entrypoint of the `pgbouncer` service in docker-compose.yml: write
# pgbouncer's settings and password file from the environment, then run it
# in the foreground, its log on stderr (`docker compose logs pgbouncer`).
#
# The pooling is the local set-up's (scripts/services.sh: pgbouncer_ini):
# transaction mode in front of the primary, the pool sizes the app's settings
# count with (shop/settings/base.py: connection_budget), the same timeouts.
# tests/shop/test_compose.py keeps the two from drifting apart, and
# tests/shop/test_compose_pgbouncer.py runs this script against the local
# primary. What differs is TLS, explained where it is set below.
#
# Every start writes the files again, so a changed password or pool size
# takes effect with `docker compose up -d pgbouncer`.
set -euo pipefail

: "${SHOP_APP_PASSWORD:?set SHOP_APP_PASSWORD, the password of the role shop_app (docker-compose.yml)}"
DIR="${SHOP_PGBOUNCER_DIR:-/var/lib/shop-pgbouncer}"
PRIMARY_HOST="${SHOP_PRIMARY_HOST:-primary}"
PRIMARY_PORT="${SHOP_PRIMARY_PORT:-5432}"
LISTEN_ADDR="${SHOP_PGBOUNCER_LISTEN_ADDR:-*}"
PORT="${SHOP_PGBOUNCER_PORT:-6432}"
POOL_SIZE="${SHOP_PGBOUNCER_POOL_SIZE:-30}"
MAX_CLIENT_CONN="${SHOP_PGBOUNCER_MAX_CLIENT_CONN:-200}"
# A user of pgbouncer's admin console only (SHOW POOLS, ...), unknown to
# PostgreSQL.
ADMIN_PASSWORD="${SHOP_PGBOUNCER_ADMIN_PASSWORD:-shop_pgbouncer}"
# The program to run once the files are written: tests set `true` to read
# the files without starting anything.
BIN="${SHOP_PGBOUNCER_BIN:-pgbouncer}"

# Written whole and then renamed, readable by this user only: the password
# file holds passwords in plain text.
write() {  # path; the content on stdin
    (umask 077 && cat >"$1.new")
    mv "$1.new" "$1"
}

# A quoted field of the password file; pgbouncer reads "" inside one as ".
quoted() {
    printf '"%s"' "${1//\"/\"\"}"
}

mkdir -p "$DIR"

write "$DIR/userlist.txt" <<USERS
$(quoted shop_app) $(quoted "$SHOP_APP_PASSWORD")
$(quoted shop_pgbouncer) $(quoted "$ADMIN_PASSWORD")
USERS

write "$DIR/pgbouncer.ini" <<INI
; Written by scripts/docker/pgbouncer-entrypoint.sh at every start.
[databases]
; Any database a client names, on the primary under the same name.
* = host=$PRIMARY_HOST port=$PRIMARY_PORT

[pgbouncer]
listen_addr = $LISTEN_ADDR
listen_port = $PORT
; TCP only: nothing in the other containers could reach a socket file here.
unix_socket_dir =

; A server connection serves one transaction of a client, then another
; client's: the app's context is transaction-local for this reason
; (shop/db_context.py), and chapter 16 shows what leaks between clients.
pool_mode = transaction
; Server connections per database and user: all the primary sees of the app,
; whatever the number of web and worker processes (connection_budget).
default_pool_size = $POOL_SIZE
; Client connections: every process's pool of 'default'.
max_client_conn = $MAX_CLIENT_CONN
; As long as a request waits for the app's own pool (DATABASE_POOL_TIMEOUT).
query_wait_timeout = 10
; A primary that refuses logins (a restart) is tried again each second.
server_login_retry = 1
server_idle_timeout = 60

; Passwords in plain text, as the local set-up keeps them: SCRAM verifiers
; copied from the server would stop matching after a password change.
auth_type = scram-sha-256
auth_file = $DIR/userlist.txt
admin_users = shop_pgbouncer

; Plaintext from the app's containers. Their traffic stays on the compose
; network of one host, and the primary they would otherwise reach has no
; certificate either (the postgres image ships none, and there is no CA
; here to sign one: shop/settings/base.py then asks for TLS only if
; offered, DB_SSLMODE prefer). Across hosts, set up TLS on both sides as
; scripts/services.sh does locally.
client_tls_sslmode = disable
; TLS to the primary as soon as it offers it, unverified: with no CA there
; is nothing to verify it against.
server_tls_sslmode = prefer
INI

exec "$BIN" "$DIR/pgbouncer.ini"
