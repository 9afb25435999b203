#!/usr/bin/env bash
# Run a command against a throwaway PostgreSQL cluster and Redis server.
#
# Usage: scripts/test-services.sh COMMAND [ARG...]
#
# Both services live in one temporary directory, listen on 127.0.0.1 only and are stopped
# and deleted when this script exits, whatever the command's outcome. PostgreSQL runs with
# fsync off (the cluster is deleted at exit); Redis runs as Chorus runs it everywhere, with
# AOF persistence (appendfsync everysec), so queued messages survive a kill -9 of Redis,
# which the fault suite (tests/faults) checks. The command runs with:
#   DATABASE_URL          postgres://chorus@127.0.0.1:PORT/chorus (trust auth)
#   CHORUS_TEST_DB_NAME   chorus_test: the database pytest-django creates and the Celery
#                         worker spawned by tests/conftest.py connects to
#   CELERY_BROKER_URL     redis://127.0.0.1:PORT/0
#   CELERY_RESULT_BACKEND redis://127.0.0.1:PORT/1
# and, for the fault suite, which restarts and kills these services:
#   CHORUS_PG_BIN CHORUS_PG_DATA CHORUS_PG_USER     pg_ctl restart -D ... (as that user)
#   CHORUS_REDIS_PORT CHORUS_REDIS_DIR              where Redis listens and keeps its AOF
# and exits with the command's exit status.
#
# Preferred ports are 55432 and 56379 (CHORUS_PG_PORT, CHORUS_REDIS_PORT override them);
# a busy port is replaced by a free one chosen by the kernel.
set -euo pipefail

if [[ $# -eq 0 ]]; then
    echo "usage: $0 COMMAND [ARG...]" >&2
    exit 2
fi

log() { echo "test-services: $*" >&2; }

port_is_free() {
    python3 - "$1" <<'PY'
import socket, sys
with socket.socket() as s:
    try:
        s.bind(("127.0.0.1", int(sys.argv[1])))
    except OSError:
        sys.exit(1)
PY
}

free_port() {
    python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()'
}

pick_port() {
    if port_is_free "$1"; then echo "$1"; else free_port; fi
}

find_pg_bin() {
    if [[ -n "${PG_BIN:-}" ]]; then echo "$PG_BIN"; return; fi
    local candidate
    candidate=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1 || true)
    if [[ -n "$candidate" && -x "$candidate/initdb" ]]; then echo "$candidate"; return; fi
    if command -v initdb >/dev/null 2>&1; then dirname "$(command -v initdb)"; return; fi
    log "no PostgreSQL server binaries found (looked in /usr/lib/postgresql/*/bin and PATH)"
    exit 1
}

PG_BIN=$(find_pg_bin)
REDIS_SERVER=$(command -v redis-server || true)
if [[ -z "$REDIS_SERVER" ]]; then
    log "redis-server not found; run scripts/ensure-system-deps.sh"
    exit 1
fi

WORK_DIR=$(mktemp -d -t chorus-services.XXXXXX)
PG_DATA="$WORK_DIR/pgdata"
PG_SOCKET_DIR="$WORK_DIR/sockets"
PG_LOG="$WORK_DIR/postgres.log"
REDIS_LOG="$WORK_DIR/redis.log"
REDIS_PID=""
PG_STARTED=0
COMMAND_RAN=0

# initdb and postgres refuse to run as root: run them as an unprivileged user then.
if [[ $EUID -eq 0 ]]; then
    if id postgres >/dev/null 2>&1; then PG_USER=postgres; else PG_USER=nobody; fi
    as_pg_user() { runuser -u "$PG_USER" -- "$@"; }
else
    PG_USER=$(id -un)
    as_pg_user() { "$@"; }
fi

cleanup() {
    local status=$?
    set +e
    if [[ -n "$REDIS_PID" ]] && kill -0 "$REDIS_PID" 2>/dev/null; then
        kill "$REDIS_PID"
        wait "$REDIS_PID" 2>/dev/null
    fi
    # A Redis the fault suite restarted is not our child: ask it to stop.
    if [[ -n "${REDIS_PORT:-}" ]]; then
        redis-cli -h 127.0.0.1 -p "$REDIS_PORT" shutdown nosave >/dev/null 2>&1 || true
    fi
    if [[ $PG_STARTED -eq 1 ]]; then
        (cd "$WORK_DIR" && as_pg_user "$PG_BIN/pg_ctl" -D "$PG_DATA" -m immediate -w stop >/dev/null)
    fi
    if [[ $status -ne 0 && $COMMAND_RAN -eq 0 ]]; then
        for service_log in "$PG_LOG" "$REDIS_LOG"; do
            if [[ -s "$service_log" ]]; then
                log "last lines of $(basename "$service_log"):"
                tail -n 20 "$service_log" >&2
            fi
        done
    fi
    rm -rf "$WORK_DIR"
    log "stopped PostgreSQL and Redis, removed $WORK_DIR"
    exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

mkdir -p "$PG_SOCKET_DIR"
if [[ $EUID -eq 0 ]]; then chown -R "$PG_USER" "$WORK_DIR"; fi

PG_PORT=$(pick_port "${CHORUS_PG_PORT:-55432}")
REDIS_PORT=$(pick_port "${CHORUS_REDIS_PORT:-56379}")

log "starting PostgreSQL ($PG_BIN) on 127.0.0.1:$PG_PORT"
(
    cd "$WORK_DIR"
    as_pg_user "$PG_BIN/initdb" --pgdata="$PG_DATA" --username=chorus --auth=trust \
        --encoding=UTF8 --no-locale --no-sync >/dev/null
    # Durability is worthless for a database deleted at exit; speed is not.
    as_pg_user "$PG_BIN/pg_ctl" -D "$PG_DATA" -l "$PG_LOG" -w -t 60 start -o \
        "-p $PG_PORT -k $PG_SOCKET_DIR -c listen_addresses=127.0.0.1 -c fsync=off \
         -c synchronous_commit=off -c full_page_writes=off -c max_connections=200" >/dev/null
)
PG_STARTED=1
as_pg_user "$PG_BIN/createdb" -h 127.0.0.1 -p "$PG_PORT" -U chorus chorus

log "starting Redis on 127.0.0.1:$REDIS_PORT"
REDIS_DIR="$WORK_DIR/redis"
mkdir -p "$REDIS_DIR"
"$REDIS_SERVER" --port "$REDIS_PORT" --bind 127.0.0.1 --save "" --appendonly yes \
    --appendfsync everysec --dir "$REDIS_DIR" --logfile "$REDIS_LOG" --daemonize no &
REDIS_PID=$!
# Not reported as "Killed" when the fault suite kills it.
disown "$REDIS_PID"
for _ in $(seq 1 100); do
    if [[ "$(redis-cli -h 127.0.0.1 -p "$REDIS_PORT" ping 2>/dev/null)" == "PONG" ]]; then
        break
    fi
    if ! kill -0 "$REDIS_PID" 2>/dev/null; then
        log "redis-server exited early:"
        cat "$REDIS_LOG" >&2
        exit 1
    fi
    sleep 0.1
done
if [[ "$(redis-cli -h 127.0.0.1 -p "$REDIS_PORT" ping 2>/dev/null)" != "PONG" ]]; then
    log "Redis did not answer PING within 10 s"
    exit 1
fi

export DATABASE_URL="postgres://chorus@127.0.0.1:$PG_PORT/chorus"
export CHORUS_TEST_DB_NAME="chorus_test"
export CELERY_BROKER_URL="redis://127.0.0.1:$REDIS_PORT/0"
export CELERY_RESULT_BACKEND="redis://127.0.0.1:$REDIS_PORT/1"
export CHORUS_PG_BIN="$PG_BIN" CHORUS_PG_DATA="$PG_DATA" CHORUS_PG_USER="$PG_USER"
export CHORUS_REDIS_PORT="$REDIS_PORT" CHORUS_REDIS_DIR="$REDIS_DIR"
log "DATABASE_URL=$DATABASE_URL CELERY_BROKER_URL=$CELERY_BROKER_URL"

# Not exec: the EXIT trap must outlive the command to tear the services down.
set +e
COMMAND_RAN=1
"$@"
status=$?
set -e
exit "$status"
