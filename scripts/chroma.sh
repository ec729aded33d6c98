#!/usr/bin/env bash
# A throwaway Chroma server for tests and trials: 127.0.0.1 only, a free port, a temp persist directory.
#
#   scripts/chroma.sh          start (or reuse) the server; prints its URL (for COACH_CHROMA_URL) on stdout
#   scripts/chroma.sh stop     stop it and delete its directory
#   scripts/chroma.sh status   exit 0 and print the URL if it is running, exit 1 otherwise
#
# The server is `chroma run` from the chromadb package already in the venv (no download). Anonymized
# telemetry is off. COACH_CHROMA_DIR overrides the directory (default: $TMPDIR/coach-chroma-<uid>);
# COACH_CHROMA_BIN overrides the executable (default: .venv/bin/chroma, else `chroma` on PATH).
set -euo pipefail

ROOT="$(cd "$(dirname "$0")/.." && pwd)"
DIR="${COACH_CHROMA_DIR:-${TMPDIR:-/tmp}/coach-chroma-$(id -u)}"
START_TIMEOUT_S=60

log() { echo "chroma.sh: $*" >&2; }

find_chroma() {
    if [[ -n "${COACH_CHROMA_BIN:-}" ]]; then
        echo "$COACH_CHROMA_BIN"
    elif [[ -x "$ROOT/.venv/bin/chroma" ]]; then
        echo "$ROOT/.venv/bin/chroma"
    elif command -v chroma >/dev/null 2>&1; then
        command -v chroma
    else
        log "no chroma executable: run scripts/install.sh (it installs chromadb into .venv)"
        exit 1
    fi
}

free_port() {
    python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

url() {
    echo "http://127.0.0.1:$(cat "$DIR/port")"
}

# The v2 heartbeat answers once the server is ready to serve collections.
healthy() {
    python3 - "$(url)/api/v2/heartbeat" <<'EOF' >/dev/null 2>&1
import sys, urllib.request
with urllib.request.urlopen(sys.argv[1], timeout=2) as response:
    sys.exit(0 if response.status == 200 else 1)
EOF
}

running() {
    [[ -f "$DIR/pid" && -f "$DIR/port" ]] && kill -0 "$(cat "$DIR/pid")" 2>/dev/null && healthy
}

start_server() {
    local port chroma waited=0
    chroma=$(find_chroma)
    port=$(free_port)
    mkdir -p "$DIR/data"
    chmod 700 "$DIR"
    echo "$port" >"$DIR/port"
    ANONYMIZED_TELEMETRY=False nohup "$chroma" run --path "$DIR/data" --host 127.0.0.1 --port "$port" \
        >"$DIR/server.log" 2>&1 </dev/null &
    echo $! >"$DIR/pid"
    until healthy; do
        if ! kill -0 "$(cat "$DIR/pid")" 2>/dev/null; then
            log "the server exited:"; tail -20 "$DIR/server.log" >&2; exit 1
        fi
        if (( waited >= START_TIMEOUT_S * 4 )); then
            log "no heartbeat after ${START_TIMEOUT_S} s:"; tail -20 "$DIR/server.log" >&2; cmd_stop; exit 1
        fi
        sleep 0.25
        waited=$((waited + 1))
    done
    log "running on 127.0.0.1:$port (data in $DIR/data)"
}

cmd_start() {
    if running; then
        url
        return
    fi
    # A stale directory (a crashed or killed server): stop what is left and start clean.
    [[ -d "$DIR" ]] && cmd_stop
    start_server
    url
}

cmd_stop() {
    local pid
    if [[ -f "$DIR/pid" ]]; then
        pid=$(cat "$DIR/pid")
        if kill -0 "$pid" 2>/dev/null; then
            kill "$pid"
            for _ in $(seq 40); do kill -0 "$pid" 2>/dev/null || break; sleep 0.25; done
            kill -0 "$pid" 2>/dev/null && kill -9 "$pid"
            log "stopped"
        fi
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

case "${1:-start}" in
    start) cmd_start ;;
    stop) cmd_stop ;;
    status) cmd_status ;;
    *) log "usage: $0 [start|stop|status]"; exit 2 ;;
esac
