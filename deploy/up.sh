#!/usr/bin/env bash
# `make deploy-local`: the deployment shape of docs/deploy.md on this machine's loopback,
# every file under var/deploy. Idempotent: what already runs is left running, what
# exists is reused. Torn down by deploy/down.sh (`make deploy-down`).
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

mkdir -p "$STATE" "$RUN" "$LOG" "$STATE/home" "$STATE/redis" "$STATE/pgbouncer" \
    "$STATE/nginx/tmp"
chmod 700 "$STATE"
if [ "$(id -u)" = 0 ]; then
    chmod 711 "$STATE" # the database user reaches its own directories, lists nothing
    chown "$DB_USER" "$RUN" "$LOG" "$STATE/pgbouncer"
fi

# --- Secrets: generated once, kept in var/deploy/secrets.env (0600) -------------------
if [ ! -f "$(secrets_file)" ]; then
    token() { head -c 32 /dev/urandom | base64 | tr -dc 'A-Za-z0-9' | head -c 32; }
    umask 077
    cat >"$(secrets_file)" <<EOF
DB_PASSWORD=$(token)
REPLICATION_PASSWORD=$(token)
REDIS_PASSWORD=$(token)
EOF
    umask 022
    say "generated $(secrets_file)"
fi
set -a
# shellcheck disable=SC1090
source "$(secrets_file)"
set +a
export RUN LOG STATE PRIMARY_PORT REPLICA_PORT PGBOUNCER_PORT REDIS_PORT NGINX_PORT

pg_running() { as_db "$PG_BIN/pg_ctl" -D "$1" status >/dev/null 2>&1; }
psql_admin() { as_db "$PG_BIN/psql" -h "$RUN" -p "$PRIMARY_PORT" -d postgres -qAt -v ON_ERROR_STOP=1 "$@"; }

# --- PostgreSQL primary ---------------------------------------------------------------
PRIMARY=$STATE/pg-primary
if [ ! -f "$PRIMARY/PG_VERSION" ]; then
    say "initdb primary ($PRIMARY)"
    mkdir -p "$PRIMARY"
    [ "$(id -u)" = 0 ] && chown "$DB_USER" "$PRIMARY"
    as_db "$PG_BIN/initdb" -D "$PRIMARY" -E UTF8 --locale=C.UTF-8 --auth-local=peer \
        --auth-host=scram-sha-256 >"$LOG/initdb.log"
    PG_PORT=$PRIMARY_PORT render "$DEPLOY/postgresql.conf.in" "$PRIMARY/ctplhub.conf"
    cp "$DEPLOY/pg_hba.conf.in" "$PRIMARY/pg_hba.conf"
    echo "include_if_exists = 'ctplhub.conf'" >>"$PRIMARY/postgresql.conf"
    [ "$(id -u)" = 0 ] && chown "$DB_USER" "$PRIMARY/ctplhub.conf" "$PRIMARY/pg_hba.conf"
fi
if ! pg_running "$PRIMARY"; then
    say "starting primary on 127.0.0.1:$PRIMARY_PORT"
    as_db "$PG_BIN/pg_ctl" -D "$PRIMARY" -l "$LOG/pg-primary.log" -w start >/dev/null
fi
# Roles and the database, once; the passwords are the generated ones.
if [ "$(psql_admin -c "SELECT 1 FROM pg_roles WHERE rolname = 'ctplhub'")" != 1 ]; then
    say "creating roles and database"
    psql_admin -v pw="$DB_PASSWORD" -v rpw="$REPLICATION_PASSWORD" <<'SQL'
CREATE ROLE ctplhub LOGIN PASSWORD :'pw';
CREATE ROLE replicator REPLICATION LOGIN PASSWORD :'rpw';
CREATE DATABASE ctplhub OWNER ctplhub;
SQL
fi

# --- PostgreSQL replica: a pg_basebackup of the primary, streaming on its own slot ----
REPLICA=$STATE/pg-replica
if [ ! -f "$REPLICA/PG_VERSION" ]; then
    say "pg_basebackup replica ($REPLICA)"
    mkdir -p "$REPLICA"
    chmod 700 "$REPLICA"
    [ "$(id -u)" = 0 ] && chown "$DB_USER" "$REPLICA"
    # -R writes standby.signal and primary_conninfo; -C -S a slot keeps the WAL it needs.
    as_db env PGPASSWORD="$REPLICATION_PASSWORD" "$PG_BIN/pg_basebackup" -h 127.0.0.1 \
        -p "$PRIMARY_PORT" -U replicator -D "$REPLICA" -R -X stream -C -S ctplhub_replica \
        -c fast
    PG_PORT=$REPLICA_PORT render "$DEPLOY/postgresql.conf.in" "$REPLICA/ctplhub.conf"
    [ "$(id -u)" = 0 ] && chown "$DB_USER" "$REPLICA/ctplhub.conf"
fi
if ! pg_running "$REPLICA"; then
    say "starting replica on 127.0.0.1:$REPLICA_PORT"
    as_db "$PG_BIN/pg_ctl" -D "$REPLICA" -l "$LOG/pg-replica.log" -w start >/dev/null
fi

# --- PgBouncer ------------------------------------------------------------------------
printf '"ctplhub" "%s"\n' "$DB_PASSWORD" >"$STATE/pgbouncer/userlist.txt"
chmod 600 "$STATE/pgbouncer/userlist.txt"
render "$DEPLOY/pgbouncer.ini.in" "$STATE/pgbouncer/pgbouncer.ini"
[ "$(id -u)" = 0 ] && chown "$DB_USER" "$STATE/pgbouncer/userlist.txt" "$STATE/pgbouncer/pgbouncer.ini"
if running "$RUN/pgbouncer.pid"; then
    kill -HUP "$(cat "$RUN/pgbouncer.pid")" # re-read the rendered config
else
    say "starting pgbouncer on 127.0.0.1:$PGBOUNCER_PORT"
    as_db pgbouncer -d "$STATE/pgbouncer/pgbouncer.ini"
fi

# --- Redis ----------------------------------------------------------------------------
render "$DEPLOY/redis.conf.in" "$STATE/redis/redis.conf"
chmod 600 "$STATE/redis/redis.conf"
if ! running "$RUN/redis.pid"; then
    say "starting redis on 127.0.0.1:$REDIS_PORT"
    redis-server "$STATE/redis/redis.conf"
fi
wait_for redis 10 env REDISCLI_AUTH="$REDIS_PASSWORD" redis-cli -p "$REDIS_PORT" ping

# --- The application's environment ----------------------------------------------------
APP_ENV=$STATE/app.env
umask 077
cat >"$APP_ENV" <<EOF
CTPLHUB_HOME=$STATE/home
CTPLHUB_DATABASE_URL=postgresql://ctplhub:$DB_PASSWORD@127.0.0.1:$PGBOUNCER_PORT/ctplhub
CTPLHUB_DATABASE_REPLICA_URL=postgresql://ctplhub:$DB_PASSWORD@127.0.0.1:$PGBOUNCER_PORT/ctplhub_replica
CTPLHUB_REDIS_URL=redis://:$REDIS_PASSWORD@127.0.0.1:$REDIS_PORT/0
CTPLHUB_PUBLIC_URL=http://127.0.0.1:$NGINX_PORT
CTPLHUB_COOKIE_SECURE=false
CTPLHUB_SERVE_RUNS_JOBS=false
FORWARDED_ALLOW_IPS=127.0.0.1
EOF
umask 022
with_app_env() { (set -a && source "$APP_ENV" && set +a && exec "$@"); }

# --- Migrations once, then the demo's insurers, accounts and fleet ---------------------
# Straight to the primary, not through PgBouncer: a migration is one long session.
DIRECT=postgresql://ctplhub:$DB_PASSWORD@127.0.0.1:$PRIMARY_PORT/ctplhub
with_app_env env CTPLHUB_DATABASE_URL="$DIRECT" "$CTPLHUB" init >>"$LOG/init.log" 2>&1
if [ ! -f "$STATE/home/demo.json" ]; then
    say "loading the demo (${VEHICLES:-2000} vehicles; secrets in $STATE/home/demo.json)"
    with_app_env env CTPLHUB_DATABASE_URL="$DIRECT" "$CTPLHUB" demo --no-serve --json \
        --vehicles "${VEHICLES:-2000}" 2>>"$LOG/init.log" | tail -n 1 >"$STATE/demo-report.json"
    chmod 600 "$STATE/demo-report.json"
fi

# --- API processes and the worker -----------------------------------------------------
start_app() {  # start_app NAME ARGS...: in its own session, its pid in run/NAME.pid
    local name=$1
    shift
    if running "$RUN/$name.pid"; then return 0; fi
    say "starting $name"
    # One fork, then exec all the way down: the pid recorded is the process itself.
    (set -a && source "$APP_ENV" && set +a && exec setsid "$CTPLHUB" "$@") \
        >>"$LOG/$name.log" 2>&1 </dev/null &
    echo $! >"$RUN/$name.pid"
}
UPSTREAM_SERVERS=""
# API processes of an earlier run that API_PORTS no longer names (CTPLHUB_DEPLOY_API_PROCS
# lowered): nginx is pointed at the new list below first, then they are stopped.
STALE_APIS=()
for file in "$RUN"/api-*.pid; do
    [ -e "$file" ] || continue
    name=$(basename "$file" .pid)
    [[ " $API_PORTS " == *" ${name#api-} "* ]] || STALE_APIS+=("$name")
done
for port in $API_PORTS; do
    start_app "api-$port" serve --host 127.0.0.1 --port "$port"
    UPSTREAM_SERVERS+="        server 127.0.0.1:$port max_fails=3 fail_timeout=5s;"$'\n'
done
start_app worker worker --metrics-port "$WORKER_METRICS_PORT"
for port in $API_PORTS; do
    wait_for "api-$port" 60 curl -fsS "http://127.0.0.1:$port/readyz"
done

# --- nginx ----------------------------------------------------------------------------
export UPSTREAM_SERVERS NGINX_USER_LINE=""
[ "$(id -u)" = 0 ] && NGINX_USER_LINE="user www-data;" && chown -R www-data "$STATE/nginx/tmp"
render "$DEPLOY/nginx.conf.in" "$STATE/nginx/nginx.conf"
NGINX=(nginx -p "$STATE/nginx" -c "$STATE/nginx/nginx.conf" -e "$LOG/nginx-error.log")
"${NGINX[@]}" -t -q
if running "$RUN/nginx.pid"; then
    "${NGINX[@]}" -s reload
else
    say "starting nginx on 127.0.0.1:$NGINX_PORT"
    "${NGINX[@]}"
fi
wait_for nginx 10 curl -fsS "http://127.0.0.1:$NGINX_PORT/readyz"
for name in "${STALE_APIS[@]}"; do
    pid=$(head -n1 "$RUN/$name.pid")
    say "stopping $name (pid $pid): not in API_PORTS ($API_PORTS)"
    kill -TERM "$pid" 2>/dev/null || true
    for _ in $(seq 200); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -0 "$pid" 2>/dev/null && kill -KILL "$pid"
    rm -f "$RUN/$name.pid"
done
say "up: http://127.0.0.1:$NGINX_PORT/readyz"
curl -fsS "http://127.0.0.1:$NGINX_PORT/readyz"
echo
