#!/usr/bin/env bash
# A bounded burst of many concurrent users against a moodwire server on this machine:
# mixed cache hits (a few hot keywords), misses (fresh limits) and bad requests.
#   scripts/stress_test.sh [--url http://127.0.0.1:8000] [--duration 20s] [--connections 200] [--threads 2]
#                          [--mix mixed|hits|hits-plot]
# mixed: 80 % hits, 15 % misses, 5 % bad requests; hits: one cached keyword, no plot;
# hits-plot: the same with the chart. Reports req/s, p50/p95/p99 and errors. Loopback only.
set -euo pipefail
url=http://127.0.0.1:8000; duration=20s; connections=200; threads=2; mix=mixed
while [ $# -gt 0 ]; do
  case "$1" in
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
curl --silent --fail --max-time 5 "$url/healthz" >/dev/null || { echo "no moodwire at $url (start it with: make run)" >&2; exit 1; }
script=$(mktemp --suffix .lua)
trap 'rm -f "$script"' EXIT
cat > "$script" <<'LUA'
-- mixed: 80 % hits on five hot keywords, 15 % misses (a fresh limit each), 5 % bad requests.
local mix = os.getenv("MIX") or "mixed"
local hot = {"AI", "climate", "bitcoin", "elections", "layoffs"}
local counter = 0
local statuses = {}
request = function()
  counter = counter + 1
  local r = math.random(100)
  local body
  if mix == "hits" then
    body = '{"keyword":"AI","limit":100,"return_plot":false}'
  elseif mix == "hits-plot" then
    body = '{"keyword":"AI","limit":100}'
  elseif r <= 80 then
    body = string.format('{"keyword":"%s","limit":100}', hot[math.random(#hot)])
  elseif r <= 95 then
    body = string.format('{"keyword":"%s","limit":%d}', hot[math.random(#hot)], math.random(1, 1000))
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
  io.write(string.format("non-2xx/3xx responses: %d (the 5 %% bad requests are expected 422s)\n", summary.errors.status))
end
LUA
# Warm the hot keywords so the run measures the steady state.
for k in AI climate bitcoin elections layoffs; do
  curl --silent --max-time 60 -H 'content-type: application/json' -d "{\"keyword\":\"$k\",\"limit\":100}" "$url/analyze" >/dev/null
done
MIX=$mix wrk --threads "$threads" --connections "$connections" --duration "$duration" --timeout 30s --latency --script "$script" "$url"
