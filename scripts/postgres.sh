#!/usr/bin/env bash
# A throwaway PostgreSQL cluster for tests and benchmarks: 127.0.0.1 only, a free port, a temp dir.
#
#   scripts/postgres.sh          start (or reuse) the cluster; prints its SQLAlchemy URL on stdout
#   scripts/postgres.sh stop     stop it and delete its directory
#   scripts/postgres.sh status   exit 0 and print the URL if it is running, exit 1 otherwise
#
# Installs Debian's postgresql with apt-get when no server binaries are found. PostgreSQL refuses to run
# as root, so as root the cluster belongs to the `postgres` system user (created by the Debian package).
# Authentication is scram-sha-256 with a generated password, kept in the cluster directory (mode 600).
# COACH_PG_DIR overrides the directory (default: $TMPDIR/coach-pg-<uid>).
set -euo pipefail

DIR="${COACH_PG_DIR:-${TMPDIR:-/tmp}/coach-pg-$(id -u)}"
DATA="$DIR/data"
DB_NAME="coach"
DB_USER="coach"

log() { echo "postgres.sh: $*" >&2; }

find_bindir() {
    local candidate
    for candidate in $(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V -r); do
        if [[ -x "$candidate/initdb" && -x "$candidate/pg_ctl" ]]; then
            echo "$candidate"
            return 0
        fi
    done
    return 1
}

install_postgres() {
    if [[ $(id -u) -ne 0 ]]; then
        log "PostgreSQL is not installed and installing it needs root: sudo apt-get install -y postgresql"
        exit 1
    fi
    log "installing Debian's postgresql"
    export DEBIAN_FRONTEND=noninteractive
    # Only refresh the package lists when apt does not know the package yet.
    if ! apt-cache show postgresql >/dev/null 2>&1; then
        apt-get update -qq
    fi
    apt-get install -y -qq postgresql >/dev/null
}

# Run a command as the cluster's owner: ourselves, or `postgres` when we are root.
as_owner() {
    if [[ $(id -u) -eq 0 ]]; then
        runuser -u postgres -- "$@"
    else
        "$@"
    fi
}

free_port() {
    local port
    if command -v python3 >/dev/null 2>&1; then
        python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
        return
    fi
    for port in $(seq 55432 55532); do
        if ! (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
            echo "$port"
            return
        fi
    done
    log "no free port between 55432 and 55532"
    exit 1
}

url() {
    echo "postgresql+psycopg://$DB_USER:$(cat "$DIR/password")@127.0.0.1:$(cat "$DIR/port")/$DB_NAME"
}

running() {
    [[ -f "$DIR/port" && -f "$DIR/password" && -d "$DATA" ]] && as_owner "$BIN/pg_ctl" status -D "$DATA" >/dev/null 2>&1
}

init_cluster() {
    log "creating a cluster in $DIR"
    mkdir -p "$DIR"
    chmod 700 "$DIR"
    (umask 077; od -An -tx1 -N18 /dev/urandom | tr -d ' \n' >"$DIR/password")
    if [[ $(id -u) -eq 0 ]]; then
        chown -R postgres: "$DIR"
    fi
    as_owner "$BIN/initdb" -D "$DATA" -U "$DB_USER" --pwfile="$DIR/password" \
        --auth-local=scram-sha-256 --auth-host=scram-sha-256 -E UTF8 --no-locale >"$DIR/initdb.log" 2>&1 \
        || { cat "$DIR/initdb.log" >&2; exit 1; }
}

start_cluster() {
    local port
    port=$(free_port)
    echo "$port" >"$DIR/port"
    as_owner "$BIN/pg_ctl" start -w -t 60 -D "$DATA" -l "$DIR/server.log" \
        -o "-p $port -k $DIR -c listen_addresses=127.0.0.1 -c max_connections=100" >/dev/null \
        || { tail -20 "$DIR/server.log" >&2; exit 1; }
    if ! PGPASSWORD=$(cat "$DIR/password") psql -h 127.0.0.1 -p "$port" -U "$DB_USER" -d postgres -tAc \
        "SELECT 1 FROM pg_database WHERE datname = '$DB_NAME'" | grep -q 1; then
        PGPASSWORD=$(cat "$DIR/password") psql -h 127.0.0.1 -p "$port" -U "$DB_USER" -d postgres -qc \
            "CREATE DATABASE $DB_NAME" >/dev/null
    fi
    log "running on 127.0.0.1:$port (data in $DATA)"
}

cmd_start() {
    if running; then
        url
        return
    fi
    [[ -d "$DATA" ]] || init_cluster
    start_cluster
    url
}

cmd_stop() {
    if running; then
        as_owner "$BIN/pg_ctl" stop -m fast -D "$DATA" >/dev/null
        log "stopped"
    fi
    rm -rf "$DIR"
}

cmd_status() {
    if running; then
        url
    else
        log "not running"
        exit 1
    fi
}

BIN=$(find_bindir) || { install_postgres; BIN=$(find_bindir); }

case "${1:-start}" in
    start) cmd_start ;;
    stop) cmd_stop ;;
    status) cmd_status ;;
    *) log "usage: $0 [start|stop|status]"; exit 2 ;;
esac
