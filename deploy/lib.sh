# Shared by deploy/up.sh, down.sh and check.sh (docs/deploy.md): where everything lives,
# which ports, and how to run a PostgreSQL or PgBouncer command as a user they accept.
set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
DEPLOY=$REPO/deploy
STATE=${CTPLHUB_DEPLOY_DIR:-$REPO/var/deploy}   # git-ignored (var/)
RUN=$STATE/run
LOG=$STATE/log
PG_BIN=${PG_BIN:-/usr/lib/postgresql/15/bin}
CTPLHUB=${CTPLHUB:-$REPO/.venv/bin/ctplhub}

NGINX_PORT=${NGINX_PORT:-8080}
# CTPLHUB_DEPLOY_API_PROCS=N: N API processes on 8101, 8102, ... (2 by default);
# API_PORTS="..." names the ports instead.
API_PROCS=${CTPLHUB_DEPLOY_API_PROCS:-2}
if ! [[ "$API_PROCS" =~ ^[1-9]$ ]]; then
    echo "CTPLHUB_DEPLOY_API_PROCS must be 1 to 9, got '$API_PROCS'" >&2
    exit 2
fi
API_PORTS=${API_PORTS:-$(seq -s ' ' 8101 $((8100 + API_PROCS)))}
PRIMARY_PORT=${PRIMARY_PORT:-5440}
REPLICA_PORT=${REPLICA_PORT:-5441}
PGBOUNCER_PORT=${PGBOUNCER_PORT:-6432}
REDIS_PORT=${REDIS_PORT:-6380}
WORKER_METRICS_PORT=${WORKER_METRICS_PORT:-8109}

# PostgreSQL and PgBouncer refuse to run as root: as root, they run as the postgres user
# (which then owns their directories); as anyone else, as that user.
if [ "$(id -u)" = 0 ]; then
    DB_USER=${DB_USER:-postgres}
    as_db() { runuser -u "$DB_USER" -- "$@"; }
else
    DB_USER=$(id -un)
    as_db() { "$@"; }
fi

say() { printf '[deploy] %s\n' "$*"; }

# The one secret file: generated on the first `make deploy-local`, never a default.
secrets_file() { printf '%s/secrets.env' "$STATE"; }

running() {  # running PIDFILE: whether the process it names is alive
    [ -f "$1" ] && kill -0 "$(head -n1 "$1")" 2>/dev/null
}

render() {  # render TEMPLATE TARGET: ${VAR} placeholders from the environment
    envsubst "$(grep -o '\${[A-Z_]*}' "$1" | sort -u | tr -d '\n')" <"$1" >"$2"
}

wait_for() {  # wait_for WHAT SECONDS COMMAND...: until COMMAND succeeds
    local what=$1 seconds=$2
    shift 2
    for _ in $(seq $((seconds * 10))); do
        if "$@" >/dev/null 2>&1; then return 0; fi
        sleep 0.1
    done
    say "$what did not come up within ${seconds}s (logs: $LOG)"
    return 1
}
