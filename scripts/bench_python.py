#!/usr/bin/env python3
"""The Python baseline for `moodwire bench`: the same INT8 model through Python onnxruntime.

    python scripts/bench_python.py --model-dir models/emotion --corpus data/emotion/test.txt

Two loops over the same texts:
  original    what the original Python service did: mini-batches of 16 in input
              order, each padded to its longest text
  bucketed    best-effort Python: texts sorted by length, batches of 16 (its best size here)
Prints JSON rows shaped like `moodwire bench --json`.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "experiment"))
from common import OnnxEmotionModel, softmax  # noqa: E402


class Model:
    """The two loops over experiment/common.py's model wrapper (the one evaluate.py uses)."""

    def __init__(self, model_dir: Path):
        self.model = OnnxEmotionModel(model_dir)

    def run(self, texts: list[str]):
        return softmax(self.model.run(self.model.encode(texts)))

    def original(self, texts: list[str]) -> None:
        for start in range(0, len(texts), 16):
            self.run(texts[start : start + 16])

    def bucketed(self, texts: list[str]) -> None:
        encodings = self.model.encode(texts)
        order = sorted(range(len(texts)), key=lambda i: len(encodings[i]))
        for start in range(0, len(order), 16):
            softmax(self.model.run([encodings[i] for i in order[start : start + 16]]))


def row(name: str, seconds: list[float], items_per_op: int, unit: str) -> dict:
    ms = sorted(s * 1e3 for s in seconds)
    pick = lambda q: ms[round((len(ms) - 1) * q)]  # noqa: E731
    return {"name": name, "p50_ms": round(pick(0.5), 3), "p99_ms": round(pick(0.99), 3),
            "per_second": round(len(ms) * items_per_op / (sum(ms) / 1e3), 3), "unit": unit}


def timed(fn, *args) -> float:
    started = time.perf_counter()
    fn(*args)
    return time.perf_counter() - started


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model-dir", type=Path, default=Path("models/emotion"))
    p.add_argument("--corpus", type=Path, default=Path("data/emotion/test.txt"))
    p.add_argument("--single", type=int, default=300)
    p.add_argument("--repeats", type=int, default=10)
    args = p.parse_args()

    texts = [line.rsplit(";", 1)[0] for line in args.corpus.read_text(encoding="utf-8").splitlines() if line.strip()]
    model = Model(args.model_dir)
    batch = texts[:250]
    model.bucketed(batch)  # warm-up
    rows = [
        row("python: 1 post", [timed(model.run, [t]) for t in texts[: args.single]], 1, "posts"),
        row("python: 250 posts, original loop (16, in order)", [timed(model.original, batch) for _ in range(args.repeats)], 250, "posts"),
        row("python: 250 posts, length-bucketed", [timed(model.bucketed, batch) for _ in range(args.repeats)], 250, "posts"),
        row("python: whole corpus, original loop", [timed(model.original, texts)], len(texts), "posts"),
        row("python: whole corpus, length-bucketed", [timed(model.bucketed, texts)], len(texts), "posts"),
    ]
    print(json.dumps(rows, indent=2))


if __name__ == "__main__":
    main()
