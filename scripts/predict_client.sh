#!/usr/bin/env bash
# Asks a running moodwire for the emotions about a keyword and pretty-prints the answer.
#   scripts/predict_client.sh [KEYWORD] [LIMIT]      (MOODWIRE_URL, default http://127.0.0.1:8000)
set -euo pipefail
keyword=${1:-AI}
limit=${2:-250}
url=${MOODWIRE_URL:-http://127.0.0.1:8000}
body=$(python3 -c 'import json,sys; print(json.dumps({"keyword": sys.argv[1], "limit": int(sys.argv[2]), "return_plot": False}))' "$keyword" "$limit")
curl --silent --show-error --max-time 60 -H 'content-type: application/json' -d "$body" "$url/analyze" |
  python3 -c '
import json, sys
r = json.load(sys.stdin)
if "error" in r:
    sys.exit(f"error {r[\"error\"][\"code\"]}: {r[\"error\"][\"message\"]}")
print(f"{r[\"keyword\"]}: {r[\"count\"]} posts from {r[\"posts_source\"]}, {r[\"source\"]} in {r[\"time\"]*1000:.1f} ms ({r[\"model\"]})")
for e in r["agg"]:
    bar = "#" * round(e["pct"] / 2)
    print(f"  {e[\"label\"]:<9} {e[\"pct\"]:5.1f}%  {e[\"count\"]:>4}  conf {e[\"avg_score\"]:.2f}  {bar}")
'
