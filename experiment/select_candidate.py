"""Picks the shipped model among INT8 candidates: the best mean of accuracy and macro-F1
on validation, read from an `evaluate.py --splits validation` report. Prints the winner's
folder. The test split plays no part.

    python experiment/select_candidate.py experiment/runs/recipe/candidates_validation.json
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("report", type=Path)
    report = json.loads(p.parse_args().report.read_text())
    score = lambda m: (m["validation"]["accuracy"] + m["validation"]["macro_f1"]) / 2  # noqa: E731
    best = max(report.values(), key=score)
    print(best["model_dir"])


if __name__ == "__main__":
    main()
