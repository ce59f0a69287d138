#!/usr/bin/env bash
# `make deploy-down`: stop what deploy/up.sh started, newest first, each by the pid it
# recorded; the data stays under var/deploy (`make deploy-clean` removes it).
# Idempotent: what is not running is skipped.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

stop_pid() {  # stop_pid NAME: SIGTERM, then wait up to 20 s for a graceful end
    local file=$RUN/$1.pid
    if ! running "$file"; then
        rm -f "$file"
        return 0
    fi
    local pid
    pid=$(head -n1 "$file")
    say "stopping $1 (pid $pid)"
    kill -TERM "$pid"
    for _ in $(seq 200); do
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.1
    done
    if kill -0 "$pid" 2>/dev/null; then
        say "$1 did not stop within 20 s: killing it"
        kill -KILL "$pid"
    fi
    rm -f "$file"
}

if running "$RUN/nginx.pid"; then
    say "stopping nginx"
    nginx -p "$STATE/nginx" -c "$STATE/nginx/nginx.conf" -e "$LOG/nginx-error.log" -s quit
    for _ in $(seq 100); do running "$RUN/nginx.pid" || break; sleep 0.1; done
fi
for file in "$RUN"/api-*.pid; do
    [ -e "$file" ] && stop_pid "$(basename "$file" .pid)"
done
stop_pid worker
stop_pid pgbouncer  # SIGTERM: PgBouncer 1.18's "safe shutdown" is SIGINT; no client is left
stop_pid redis
for cluster in pg-replica pg-primary; do
    if [ -f "$STATE/$cluster/postmaster.pid" ]; then
        say "stopping $cluster"
        as_db "$PG_BIN/pg_ctl" -D "$STATE/$cluster" -m fast -w stop >/dev/null || true
    fi
done
say "down"
