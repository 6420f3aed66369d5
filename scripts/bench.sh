#!/usr/bin/env bash
# Runs `moodwire bench` and the Python baseline on the same model and corpus, one
# after the other in one run, and prints both with the ratios (see BENCHMARKS.md).
#   make bench      (builds the binary and the Python venv .venv-bench, then runs this)
set -euo pipefail
cd "$(dirname "$0")/.."
venv=.venv-bench
corpus=${BENCH_CORPUS:-../shared/data/emotion/test.txt}
rust=$(mktemp); python=$(mktemp)
trap 'rm -f "$rust" "$python"' EXIT
echo "machine: $(nproc) cores, $(uname -m); model: $(python3 -c 'import json; print(json.load(open("models/emotion/config.json"))["model_version"])')"
target/release/moodwire bench --json --corpus "$corpus" > "$rust"
"$venv/bin/python" scripts/bench_python.py --corpus "$corpus" > "$python"
python3 - "$rust" "$python" <<'PY'
import json, sys
rust = {r["name"]: r for r in json.load(open(sys.argv[1]))}
py = {r["name"]: r for r in json.load(open(sys.argv[2]))}
print(f"{'measurement':<52} {'p50 ms':>9} {'p99 ms':>9} {'throughput':>18}")
for r in list(rust.values()) + list(py.values()):
    print(f"{r['name']:<52} {r['p50_ms']:>9.3f} {r['p99_ms']:>9.3f} {r['per_second']:>11.1f} {r['unit']}/s")
def ratio(a, b):
    return a["per_second"] / b["per_second"]
print()
print("ratios (throughput, higher is better for the first):")
pairs = [
    ("classifier: whole corpus, length-bucketed", "python: whole corpus, original loop", "Rust vs the original Python loop, whole corpus"),
    ("classifier: whole corpus, length-bucketed", "python: whole corpus, length-bucketed", "Rust vs best-effort Python, whole corpus"),
    ("classifier: 250 posts, length-bucketed", "python: 250 posts, original loop (16, in order)", "Rust vs the original Python loop, 250 posts"),
    ("classifier: 250 posts, length-bucketed", "classifier: 250 posts, batches of 16 in order", "Rust: length-bucketing vs batches of 16 in order"),
    ("classifier: 1 post", "python: 1 post", "Rust vs Python, one post"),
]
for a, b, label in pairs:
    pool = {**rust, **py}
    print(f"  {label:<52} {ratio(pool[a], pool[b]):6.2f}x")
PY
