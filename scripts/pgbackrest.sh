# pgBackRest for the local primary (chapter 24). Sourced by
# scripts/services.sh, whose variables and helpers it uses (ROOT, VAR,
# PRIMARY, PRIMARY_PORT, SOCKDIR, PGLOG, as_pg, psql_admin, say, die).
#
# The primary archives every finished WAL segment with `pgbackrest
# archive-push`, into a repository under var/pgbackrest/repo/; `make
# backup` takes full and incremental backups into the same repository.
# A backup plus the archived WAL after it restores the cluster to any
# moment since (`make pitr-drill` proves it on a cluster of its own).
#
# Who reads the data: pgBackRest copies the data directory's files as the
# operating system's postgres user, so row-level security, which filters
# rows inside queries, never applies to a physical backup: every row is in
# it. The database role it connects as only coordinates the backup
# (pg_backup_start / pg_backup_stop, a WAL switch, a checkpoint). That role
# is shop_backup (scripts/sql/backup_role.sql): no superuser, no BYPASSRLS,
# no table privilege, and no password, so it logs in over the cluster's
# Unix socket only. A superuser would work too, and would be able to do
# anything; a logical dump (pg_dump) would need BYPASSRLS and SELECT on
# every table, which is a role able to read every customer's data over SQL.

BACKREST_DIR="$VAR/pgbackrest"
BACKREST_CONF="$BACKREST_DIR/pgbackrest.conf"
BACKREST_REPO="$BACKREST_DIR/repo"
BACKREST_STANZA="${SHOP_BACKREST_STANZA:-shop}"
# Full backups kept; older ones, and the WAL only they need, are expired.
BACKREST_RETENTION_FULL="${SHOP_BACKREST_RETENTION_FULL:-2}"

pgbackrest_installed() { command -v pgbackrest >/dev/null 2>&1; }

pgbackrest_as_pg() {  # pgbackrest as the data directory's owner, with our config
    as_pg pgbackrest --config="$BACKREST_CONF" --stanza="$BACKREST_STANZA" "$@"
}

# The command the primary runs for each finished WAL segment. It exits
# non-zero when the segment is not safely in the repository, and the
# server then keeps the segment and retries it (pg_stat_archiver counts
# the failures, which /healthz reports).
archive_command_line() {
    if pgbackrest_installed; then
        echo "pgbackrest --config=$BACKREST_CONF --stanza=$BACKREST_STANZA archive-push %p"
    else
        # Without pgBackRest: a plain copy that refuses to overwrite.
        echo "test ! -f $ARCHIVE/%f && cp %p $ARCHIVE/%f"
    fi
}

write_pgbackrest_conf() {
    mkdir -p "$BACKREST_DIR" "$BACKREST_REPO" "$PGLOG/pgbackrest"
    [ "$(id -u)" = 0 ] && chown postgres: "$BACKREST_DIR" "$BACKREST_REPO" "$PGLOG/pgbackrest"
    chmod 700 "$BACKREST_DIR" "$BACKREST_REPO"
    local content
    content="$(cat <<CONF
# Written by scripts/pgbackrest.sh on every 'services.sh up': edit the
# script, not this file.
[global]
repo1-path=$BACKREST_REPO
repo1-retention-full=$BACKREST_RETENTION_FULL
log-path=$PGLOG/pgbackrest
lock-path=$BACKREST_DIR/lock
log-level-console=info
log-level-file=info
# A backup starts with a checkpoint: now, not at the next scheduled one.
start-fast=y
compress-type=lz4
# A segment that cannot be archived within this many seconds fails the
# archive-push, the backup or the check that waits for it.
archive-timeout=30

[$BACKREST_STANZA]
pg1-path=$PRIMARY
pg1-port=$PRIMARY_PORT
pg1-socket-path=$SOCKDIR
pg1-user=shop_backup
CONF
)"
    if [ ! -f "$BACKREST_CONF" ] || [ "$(cat "$BACKREST_CONF")" != "$content" ]; then
        printf '%s\n' "$content" >"$BACKREST_CONF"
    fi
    [ "$(id -u)" = 0 ] && chown postgres: "$BACKREST_CONF"
    chmod 600 "$BACKREST_CONF"
}

ensure_archive_conf() {  # data directory; prints "changed" when a reload is needed
    local dir="$1" line
    line="archive_command = '$(archive_command_line)'"
    # The last archive_command in the file wins: append the current one
    # when it differs, which also moves a cluster from `cp` to pgBackRest.
    [ "$(grep '^archive_command' "$dir/postgresql.conf" | tail -1)" = "$line" ] && return 0
    printf '# WAL archiving (scripts/pgbackrest.sh).\n%s\n' "$line" >>"$dir/postgresql.conf"
    echo changed
}

# Archiving for the running primary, in an order that never fails a
# segment: the repository and its stanza (pgBackRest's record of this
# cluster) first, then archive-push as the archive_command, then a check
# that a segment really reaches the repository. Until then a new cluster
# has no archive_command: its finished segments wait in pg_wal, marked
# ready, and are archived once the command is set. Run after the roles
# exist: pgBackRest connects as shop_backup.
ensure_archiving() {
    local created=""
    if pgbackrest_installed; then
        write_pgbackrest_conf
        psql_admin -f "$ROOT/scripts/sql/backup_role.sql" >/dev/null
        if ! pgbackrest_as_pg info --output=json 2>/dev/null | grep -q '"status":{"code":0'; then
            say "pgbackrest: creating stanza $BACKREST_STANZA in $BACKREST_REPO"
            pgbackrest_as_pg --log-level-console=warn stanza-create \
                || die "pgbackrest stanza-create failed; see $PGLOG/pgbackrest/"
            created=1
        fi
    else
        say "WARNING: pgbackrest is not installed: WAL is archived by cp into $ARCHIVE, which is not durable, and 'make backup' cannot run. Install it, e.g. 'apt-get install pgbackrest', and run 'scripts/services.sh up' again."
    fi
    reload_if_running "$PRIMARY" "$(ensure_archive_conf "$PRIMARY")"
    check_archive_command
    if [ -n "$created" ]; then
        # A WAL switch, and the segment found in the repository (make
        # backup checks again before every backup).
        pgbackrest_as_pg --log-level-console=warn check \
            || die "pgbackrest check failed: WAL does not reach the repository; see $PGLOG/pgbackrest/"
    fi
}

# ALTER SYSTEM writes postgresql.auto.conf, which wins over postgresql.conf:
# a command left there (chapter 24's exercise, a test killed midway)
# would keep overriding the one above. Say so rather than fix it quietly.
check_archive_command() {
    local running expected
    running="$(psql_admin -tAc "SHOW archive_command")"
    expected="$(archive_command_line)"
    if [ "$running" != "$expected" ]; then
        say "WARNING: the primary archives with '$running', not '$expected': postgresql.auto.conf overrides it (ALTER SYSTEM). Undo it with: ALTER SYSTEM RESET archive_command; SELECT pg_reload_conf();"
        return 1
    fi
}

# `make backup`: refuse while the archiver is failing (a backup is useless
# without the WAL after it), then back up and check the result.
cmd_backup() {  # full | incr | diff
    local type="${1:-incr}" failing
    case "$type" in full | incr | diff) ;; *) die "backup type must be full, incr or diff, not '$type'" ;; esac
    pgbackrest_installed || die "pgbackrest is not installed: apt-get install pgbackrest, then 'scripts/services.sh up'"
    pg_running "$PRIMARY" || die "the primary is not running: start it with 'scripts/services.sh up'"
    [ -f "$BACKREST_CONF" ] || die "pgBackRest is not set up for the primary yet: run 'scripts/services.sh up', which configures it"
    check_archive_command \
        || die "the primary does not archive with pgBackRest, so a backup could not be restored; fix the archive_command as said above, or run 'scripts/services.sh up'"
    failing="$(psql_admin -tA -f "$ROOT/scripts/sql/archiver_failing.sql")"
    if [ -n "$failing" ]; then
        die "the WAL archiver is failing ($failing); see $PGLOG/primary.log and $PGLOG/pgbackrest/. No backup taken: without its WAL it could not be restored."
    fi
    # End to end: a WAL switch, and the segment found in the repository.
    pgbackrest_as_pg --log-level-console=warn check \
        || die "pgbackrest check failed: WAL does not reach the repository; see $PGLOG/pgbackrest/"
    say "pgbackrest: $type backup of stanza $BACKREST_STANZA"
    # An incremental backup with no full one yet becomes a full one.
    pgbackrest_as_pg backup --type="$type" \
        || die "pgbackrest backup failed; see $PGLOG/pgbackrest/"
    pgbackrest_as_pg info
}
