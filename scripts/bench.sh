#!/usr/bin/env bash
# Runs `moodwire bench` and the Python baseline on the same model and corpus in one
# run, and prints both with the ratios (see BENCHMARKS.md). The shared machine drifts
# between faster and slower phases, so the two run in the order Rust, Python, Python,
# Rust and each row is the mean of its two runs: a steady drift then weighs on both alike.
#   make bench      (builds the binary and the Python venv .venv-bench, then runs this)
set -euo pipefail
cd "$(dirname "$0")/.."
venv=.venv-bench
corpus=${BENCH_CORPUS:-data/emotion/test.txt}
runs=$(mktemp -d)
trap 'rm -rf "$runs"' EXIT
echo "machine: $(nproc) cores, $(uname -m); model: $(python3 -c 'import json; print(json.load(open("models/emotion/config.json"))["model_version"])')"
rust_run() { target/release/moodwire bench --json --corpus "$corpus" > "$runs/rust-$1.json"; }
python_run() { "$venv/bin/python" scripts/bench_python.py --corpus "$corpus" > "$runs/python-$1.json"; }
rust_run 1; python_run 1; python_run 2; rust_run 2
python3 - "$runs" <<'PY'
import json, sys
from pathlib import Path

def mean_rows(files):
    """Each row's p50, p99 and throughput averaged over the runs."""
    runs = [{r["name"]: r for r in json.loads(f.read_text())} for f in files]
    return {
        name: {**row, **{k: sum(run[name][k] for run in runs) / len(runs) for k in ("p50_ms", "p99_ms", "per_second")}}
        for name, row in runs[0].items()
    }

folder = Path(sys.argv[1])
rust = mean_rows(sorted(folder.glob("rust-*.json")))
py = mean_rows(sorted(folder.glob("python-*.json")))
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
