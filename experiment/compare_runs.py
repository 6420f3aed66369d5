"""Compares fine-tuning runs on validation (the class-imbalance ablation).

    python experiment/compare_runs.py experiment/runs/weighted experiment/runs/unweighted \
        --out models/emotion/eval/ablation.json

Reads each run's training_log.json: per-epoch validation accuracy and macro-F1,
and the selected checkpoint's per-class recall and F1. Validation only: the test
split plays no part in choosing between recipes.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from common import LABELS, write_json


def summary(run: Path) -> dict:
    log = json.loads((run / "training_log.json").read_text())
    selected = log["selected_validation"]
    return {
        "run": str(run),
        "class_weights": log["hyperparameters"]["class_weights"],
        "epochs_run": len(log["history"]),
        "per_epoch": [
            {"epoch": h["epoch"], "accuracy": h["val_accuracy"], "macro_f1": round(h["val_macro_f1"], 4)}
            for h in log["history"]
        ],
        "selected_epoch": log["selected_epoch"],
        "accuracy": selected["accuracy"],
        "macro_f1": round(selected["macro_f1"], 4),
        "per_class": {
            label: {"recall": round(selected["per_class"][label]["recall"], 4), "f1": round(selected["per_class"][label]["f1"], 4)}
            for label in LABELS
        },
    }


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("runs", type=Path, nargs="+")
    p.add_argument("--out", type=Path, required=True)
    args = p.parse_args()
    runs = [summary(r) for r in args.runs]
    write_json(args.out, {"split": "validation", "runs": runs})
    print(f"{'run':<32} {'weights':<13} {'epoch':>5} {'accuracy':>9} {'macro-F1':>9}  " + " ".join(f"{l[:8]:>8}" for l in LABELS))
    for r in runs:
        f1s = " ".join(f"{r['per_class'][l]['f1']:>8.4f}" for l in LABELS)
        print(f"{r['run']:<32} {r['class_weights']:<13} {r['selected_epoch']:>5} {r['accuracy']:>9.4f} {r['macro_f1']:>9.4f}  {f1s}")


if __name__ == "__main__":
    main()
