#!/usr/bin/env bash
# Checks /metrics with a real Prometheus client (part of `make test`): `promtool check
# metrics` (Debian's prometheus package, installed by scripts/services.sh) on the
# exposition of a fresh `moodwire serve` (embedded defaults, a data folder of its own)
# after an analysis, a cache hit and a few refused requests, so every family has
# samples. promtool fails on a malformed exposition and flags a family without HELP
# text, or with a name against Prometheus's conventions; either fails this check.
set -euo pipefail
cd "$(dirname "$0")/.."
command -v promtool >/dev/null || scripts/services.sh install
cargo build --release --locked --quiet --bin moodwire
data=$(mktemp -d)
port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
env -u REDIS_URL -u DATABASE_URL -u KAFKA_BROKERS -u REDDIT_CLIENT_ID -u MOODWIRE_API_KEYS \
    MOODWIRE_SOURCE=sample MOODWIRE_DATA_DIR="$data" MOODWIRE_ADDR="127.0.0.1:$port" \
    MOODWIRE_WARM_MAX=0 RUST_LOG=warn target/release/moodwire serve 2> "$data/serve.log" &
server=$!
trap 'kill $server 2>/dev/null; wait $server 2>/dev/null; rm -rf "$data"' EXIT
url="http://127.0.0.1:$port"
for _ in $(seq 1 300); do curl --silent --fail --max-time 1 "$url/healthz" >/dev/null && break; sleep 0.2; done
ask() { curl --silent --max-time 60 -o /dev/null -H 'content-type: application/json' -d "$1" "$url/analyze"; }
ask '{"keyword": "AI", "limit": 50}'
ask '{"keyword": "AI", "limit": 50}'
ask '{"keyword": "a\u0000b"}'
curl --silent --max-time 5 -o /dev/null -X FOO "$url/analyze"
curl --silent --max-time 5 "$url/metrics" > "$data/metrics.txt"
if ! problems=$(promtool check metrics < "$data/metrics.txt" 2>&1); then
    echo "promtool check metrics: $problems" >&2
    exit 1
fi
families=$(grep -c '^# TYPE ' "$data/metrics.txt")
echo "check_metrics: promtool accepts /metrics: $families families, each with HELP text"
