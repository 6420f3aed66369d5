#!/usr/bin/env bash
# A bounded burst of many concurrent users against a moodwire server on this machine:
# mixed cache hits (a few hot keywords), misses (fresh limits) and bad requests.
#   scripts/stress_test.sh [--url http://127.0.0.1:8000] [--duration 20s] [--connections 200] [--threads 2]
#                          [--mix mixed|hits|hits-plot|misses]
# mixed: 80 % hits, 15 % misses, 5 % bad requests; hits: one cached keyword, no plot;
# hits-plot: the same with the chart; misses: every request a fresh analysis (a hot
# keyword with a random limit, no plot). Run `--mix misses` and `--mix hits` at once to
# see what a flood of new questions does to cache hits. Reports req/s, p50/p95/p99, the status mix and
# errors. Loopback only.
#
#   scripts/stress_test.sh --soak [--duration 120s] [--connections 200]
# The soak: starts the local services (scripts/services.sh up, the broker's log kept in
# S3 so that a broker restart loses nothing) and a `moodwire serve` on Redis, Kafka and
# PostgreSQL with a database, topic, group and key prefix of its own; runs the soak mix
# of `cargo bench -p moodwire --bench load` (80 % hits, 15 % fresh analyses, 5 % hostile
# requests: NUL, escape and bidi keywords, limit 1000, invented methods, bad JSON; and
# silent connections); during it stops and restarts Redis, the broker and PostgreSQL
# once each (like crashes); then waits for the idle sync to drain and compares the
# analyses appended (moodwire_events_appended_total) with the rows in PostgreSQL.
# Reports p50/p95/p99 per kind of request and status, the status mix and the server's
# peak RSS; fails on a lost analysis, a 5xx other than 503, a 503 without Retry-After,
# a client timeout, more than 10 new /metrics label sets in the second half (one per
# request would be a leak), or a peak RSS over 400 MB.
set -euo pipefail
cd "$(dirname "$0")/.."
url=http://127.0.0.1:8000; duration=20s; connections=200; threads=2; mix=mixed; soak=false
while [ $# -gt 0 ]; do
  case "$1" in
    --soak) soak=true; duration=120s; shift ;;
    --url) url=$2; shift 2 ;;
    --duration) duration=$2; shift 2 ;;
    --connections) connections=$2; shift 2 ;;
    --threads) threads=$2; shift 2 ;;
    --mix) mix=$2; shift 2 ;;
    *) echo "unknown option $1" >&2; exit 2 ;;
  esac
done
case "$url" in
  http://127.*|http://localhost*|http://\[::1\]*) ;;
  *) echo "refusing to load-test $url: loopback addresses only" >&2; exit 2 ;;
esac
command -v wrk >/dev/null || { echo "installing wrk (Debian package)"; apt-get install -y -qq wrk >/dev/null; }
script=$(mktemp --suffix .lua)
cleanup_steps=("rm -f '$script'")
cleanup() { for step in "${cleanup_steps[@]}"; do eval "$step" || true; done; }
trap cleanup EXIT
cat > "$script" <<'LUA'
-- mixed: 80 % hits on five hot keywords, 15 % misses (a fresh limit each), 5 % bad requests.
local mix = os.getenv("MIX") or "mixed"
local hot = {"AI", "climate", "bitcoin", "elections", "layoffs"}
local threads = {}
setup = function(thread) table.insert(threads, thread) end
init = function() statuses = {} end
-- A fresh analysis: a hot keyword with a limit that is most likely not cached yet.
local function miss()
  return string.format('{"keyword":"%s","limit":%d,"return_plot":false}', hot[math.random(#hot)], math.random(1, 1000))
end
request = function()
  local r = math.random(100)
  local body
  if mix == "hits" then
    body = '{"keyword":"AI","limit":100,"return_plot":false}'
  elseif mix == "hits-plot" then
    body = '{"keyword":"AI","limit":100}'
  elseif mix == "misses" then
    body = miss()
  elseif r <= 80 then
    body = string.format('{"keyword":"%s","limit":100}', hot[math.random(#hot)])
  elseif r <= 95 then
    body = miss()
  else
    body = '{"keyword":"","limit":0}'
  end
  return wrk.format("POST", "/analyze", {["content-type"] = "application/json"}, body)
end
response = function(status, headers, body)
  statuses[status] = (statuses[status] or 0) + 1
end
done = function(summary, latency, requests)
  io.write(string.format("requests %d in %.1f s: %.0f req/s\n", summary.requests, summary.duration / 1e6, summary.requests / (summary.duration / 1e6)))
  for _, p in ipairs({50, 95, 99}) do
    io.write(string.format("p%d %.2f ms\n", p, latency:percentile(p) / 1000))
  end
  io.write(string.format("socket errors: connect %d, read %d, write %d, timeout %d\n",
    summary.errors.connect, summary.errors.read, summary.errors.write, summary.errors.timeout))
  local total = {}
  for _, thread in ipairs(threads) do
    for status, n in pairs(thread:get("statuses")) do total[status] = (total[status] or 0) + n end
  end
  local codes = {}
  for status in pairs(total) do table.insert(codes, status) end
  table.sort(codes)
  for _, status in ipairs(codes) do io.write(string.format("status %d: %d\n", status, total[status])) end
end
LUA

# Warms the hot keywords so the run measures the steady state.
warm() {
  for k in AI climate bitcoin elections layoffs; do
    curl --silent --max-time 60 -H 'content-type: application/json' -d "{\"keyword\":\"$k\",\"limit\":100}" "$1/analyze" >/dev/null
  done
}

run_wrk() {
  MIX=$mix wrk --threads "$threads" --connections "$connections" --duration "$duration" --timeout 30s --latency --script "$script" "$1"
}

if ! $soak; then
  curl --silent --fail --max-time 5 "$url/healthz" >/dev/null || { echo "no moodwire at $url (start it with: make run)" >&2; exit 1; }
  warm "$url"
  run_wrk "$url"
  exit 0
fi

# ---- the soak ----------------------------------------------------------------
seconds=${duration%s}
[ -x target/release/moodwire ] || make build
export TANSU_STORAGE=s3  # for the restart too
scripts/services.sh up
cleanup_steps+=("scripts/services.sh down")
set -a; . .services/env; set +a
run_id="soak_$$_$(date +%s)"
psql -q "$MOODWIRE_TEST_DATABASE_URL" -c "CREATE DATABASE $run_id"
database="${MOODWIRE_TEST_DATABASE_URL%/*}/$run_id"
data=$(mktemp -d)
cleanup_steps+=("rm -rf '$data'")
port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
soak_url="http://127.0.0.1:$port"
env -u REDDIT_CLIENT_ID -u MOODWIRE_API_KEYS \
  REDIS_URL="$MOODWIRE_TEST_REDIS_URL" MOODWIRE_REDIS_PREFIX="$run_id:" \
  KAFKA_BROKERS="$MOODWIRE_TEST_KAFKA_BROKERS" MOODWIRE_KAFKA_TOPIC="moodwire.$run_id" MOODWIRE_KAFKA_GROUP="$run_id" \
  DATABASE_URL="$database" MOODWIRE_SOURCE=sample MOODWIRE_DATA_DIR="$data" MOODWIRE_ADDR="127.0.0.1:$port" \
  MOODWIRE_WARM_MAX=0 RUST_LOG=warn target/release/moodwire serve 2> "$data/serve.log" &
server=$!
cleanup_steps+=("kill $server 2>/dev/null; wait $server 2>/dev/null")
for _ in $(seq 1 300); do curl --silent --fail --max-time 1 "$soak_url/healthz" >/dev/null && break; sleep 0.2; done
warm "$soak_url"

peak_kb=0
sample_rss() { local kb; kb=$(awk '/^VmRSS/ {print $2}' "/proc/$server/status" 2>/dev/null || echo 0); [ "${kb:-0}" -gt "$peak_kb" ] && peak_kb=$kb; return 0; }
cargo bench --locked --quiet -p moodwire --bench load -- --url "$soak_url" --mix soak \
  --clients "$connections" --duration "$seconds" --json > "$data/load.json" 2> "$data/load.txt" &
load=$!
# Each backend dies once and comes back 10 % of the run later.
faults=("15 stop redis" "25 start redis" "40 stop kafka" "50 start kafka" "65 stop postgres" "75 start postgres")
started=$(date +%s)
for fault in "${faults[@]}"; do
  read -r pct action name <<<"$fault"
  at=$((started + seconds * pct / 100))
  while [ "$(date +%s)" -lt "$at" ]; do sample_rss; sleep 1; done
  echo "soak: t+$(( $(date +%s) - started ))s $action $name" >&2
  scripts/services.sh "$action" "$name"
done
while kill -0 "$load" 2>/dev/null; do sample_rss; sleep 1; done
wait "$load"

# The load is over: the CPU goes quiet, the idle sync drains the backlog. Stored is
# read before appended, so an analysis appended in between cannot pass for a loss.
appended() { curl --silent --max-time 5 "$soak_url/metrics" | awk '/^moodwire_events_appended_total / {print $2}'; }
stored() { psql -qtA "$database" -c "SELECT count(*) FROM analyses WHERE NOT recovered" 2>/dev/null || echo 0; }
deadline=$(( $(date +%s) + 300 ))
while true; do
  rows=$(stored); produced=$(appended)
  [ "$rows" = "$produced" ] || [ "$(date +%s)" -ge "$deadline" ] && break
  sample_rss; sleep 2
done
sample_rss
cat "$data/load.txt"
verdict=$(python3 - "$data/load.json" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
added = r["metrics_series_added"]
problems = []
if r["server_errors_other_than_503"]: problems.append(f'{r["server_errors_other_than_503"]} 5xx other than 503')
if r["503_without_retry_after"]: problems.append(f'{r["503_without_retry_after"]} 503 without Retry-After')
if r["client_timeouts_or_broken"]: problems.append(f'{r["client_timeouts_or_broken"]} client timeouts')
if len(added) > 10: problems.append(f"/metrics gained {len(added)} label sets in the second half: {added[:12]}")
print("; ".join(problems))
PY
)
echo "peak RSS: $((peak_kb / 1024)) MB"
echo "analyses appended: $produced, stored in PostgreSQL: $rows, lost: $((produced - rows))"
[ "$produced" = "$rows" ] && [ -z "$verdict" ] && [ "$peak_kb" -lt $((400 * 1024)) ] || {
  echo "soak: FAILED ${verdict:+($verdict) }(the server's log: $data/serve.log)" >&2
  echo "where the events are (journal, forwarder, consumer lag, sync):" >&2
  curl --silent --max-time 5 "$soak_url/metrics" | grep -E '^moodwire_(events|journal|sync|kafka)' >&2 || true
  curl --silent --max-time 5 "$soak_url/readyz" >&2 || true; echo >&2
  grep -v -e overloaded -e 'response failed' "$data/serve.log" | tail -n 30 >&2
  exit 1
}
echo "soak: passed"
