"""Averages the weights of fine-tuned checkpoints that share a pretrained start (a
"uniform model soup", Wortsman et al. 2022): often more accurate than each ingredient,
at no inference cost.

    python experiment/soup.py experiment/runs/weighted experiment/runs/unweighted \
        --out experiment/runs/soup

Only checkpoints fine-tuned from the same base with the same architecture can be
averaged. Whether the soup is kept is decided on validation, like any checkpoint.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import torch
from transformers import AutoModelForSequenceClassification, AutoTokenizer


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("checkpoints", type=Path, nargs="+")
    p.add_argument("--out", type=Path, required=True)
    args = p.parse_args()
    if len(args.checkpoints) < 2:
        raise SystemExit("a soup needs at least two checkpoints")

    models = [AutoModelForSequenceClassification.from_pretrained(c) for c in args.checkpoints]
    states = [m.state_dict() for m in models]
    keys = states[0].keys()
    if any(s.keys() != keys for s in states[1:]):
        raise SystemExit("the checkpoints do not share an architecture")
    averaged = {}
    for key in keys:
        tensors = [s[key] for s in states]
        if tensors[0].is_floating_point():
            averaged[key] = torch.stack(tensors).mean(dim=0)
        else:
            # Integer buffers (position ids) are identical across fine-tunes.
            averaged[key] = tensors[0]
    soup = models[0]
    soup.load_state_dict(averaged)
    soup.save_pretrained(args.out)
    AutoTokenizer.from_pretrained(args.checkpoints[0]).save_pretrained(args.out)
    (args.out / "soup.json").write_text(json.dumps({"ingredients": [str(c) for c in args.checkpoints]}, indent=2) + "\n")
    print(f"averaged {len(args.checkpoints)} checkpoints into {args.out}")


if __name__ == "__main__":
    main()
