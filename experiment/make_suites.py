"""Builds the robustness suite's data (run once; the outputs are committed).

    python3 experiment/make_suites.py                  # the cue-free splits
    python3 experiment/make_suites.py --realistic-parts experiment/data/realistic/written/part_*.jsonl

1. Cue-free splits: `experiment/data/cue_free/{validation,test}_{variant}.txt`, the
   emotion splits with the template cue rewritten by `cues.py` (four variants). Built
   from the validation and test splits only; the training split is never touched here.
2. The realistic labelled set: the hand-written posts (`--realistic-parts`, written
   from `data/realistic/BRIEF.md` under `data/LABELLING.md`, kept in
   `data/realistic/written/`) and the 30 posts of the first check
   (`data/realistic/written/first_check.jsonl`), split once, stratified by label with a fixed
   seed, into `data/realistic/dev.jsonl` (40 %: used to choose models) and
   `data/realistic/test.jsonl` (60 %: reported once per shipped model, never trained
   on or tuned against).
"""

from __future__ import annotations

import argparse
import json
import random
from collections import Counter, defaultdict
from pathlib import Path

from common import DEFAULT_DATA_DIR, LABELS, SPLIT_FILES
from cues import VARIANTS, rewrite

HERE = Path(__file__).resolve().parent
CUE_FREE_DIR = HERE / "data" / "cue_free"
REALISTIC_DIR = HERE / "data" / "realistic"
FIRST_CHECK = REALISTIC_DIR / "written" / "first_check.jsonl"
SEED = 20261202
DEV_SHARE = 0.4

# Words that name an emotion, for tagging the 30 posts of the first check (the
# written sets carry their own tags).
NAMING = ("happy", "glad", "stoked", "proud", "grateful", "smiling", "love", "adore", "cherish",
          "sad", "lonely", "empty", "crying", "miss", "hurts", "angry", "furious", "livid",
          "infuriating", "fed up", "terrified", "scared", "afraid", "anxious", "nervous",
          "shocked", "amazed", "stunned", "speechless", "surprised")


def read_labelled(path: Path) -> list[tuple[str, str]]:
    rows = []
    for line in path.read_text(encoding="utf-8").splitlines():
        text, _, label = line.rpartition(";")
        rows.append((text, label))
    return rows


def write_cue_free(data_dir: Path) -> None:
    CUE_FREE_DIR.mkdir(parents=True, exist_ok=True)
    for split in ("validation", "test"):
        rows = read_labelled(data_dir / SPLIT_FILES[split])
        for variant in VARIANTS:
            out = CUE_FREE_DIR / f"{split}_{variant}.txt"
            out.write_text("".join(f"{rewrite(t, variant)};{label}\n" for t, label in rows), encoding="utf-8")
            changed = sum(rewrite(t, variant) != t for t, _ in rows)
            print(f"{out.relative_to(HERE.parent)}: {len(rows)} texts, {changed} rewritten")


def first_check_posts() -> list[dict]:
    posts = []
    for i, line in enumerate(FIRST_CHECK.read_text(encoding="utf-8").splitlines(), 1):
        post = json.loads(line)
        lowered = post["text"].lower()
        posts.append({
            "id": f"rp-{i:03d}",
            "text": post["text"],
            "label": post["expected"],
            "register": "title_body" if "\n" in post["text"] else "title",
            "cue": "named" if any(word in lowered for word in NAMING) else "event",
            "topic": "first check",
        })
    return posts


def split_realistic(parts: list[Path]) -> None:
    posts = first_check_posts()
    for part in parts:
        posts += [json.loads(line) for line in part.read_text(encoding="utf-8").splitlines() if line.strip()]
    texts = Counter(p["text"] for p in posts)
    duplicated = [t for t, n in texts.items() if n > 1]
    if duplicated:
        raise SystemExit(f"{len(duplicated)} texts appear twice, e.g. {duplicated[0][:60]!r}")
    by_label = defaultdict(list)
    for post in posts:
        if post["label"] not in LABELS:
            raise SystemExit(f"{post['id']}: unknown label {post['label']!r}")
        by_label[post["label"]].append(post)
    rng = random.Random(SEED)
    dev, test = [], []
    for label in LABELS:
        group = sorted(by_label[label], key=lambda p: p["id"])
        rng.shuffle(group)
        cut = round(len(group) * DEV_SHARE)
        dev += group[:cut]
        test += group[cut:]
    for name, rows in (("dev", dev), ("test", test)):
        rows.sort(key=lambda p: p["id"])
        path = REALISTIC_DIR / f"{name}.jsonl"
        path.write_text("".join(json.dumps(p, ensure_ascii=False) + "\n" for p in rows), encoding="utf-8")
        print(f"{path.relative_to(HERE.parent)}: {len(rows)} posts, {dict(Counter(p['label'] for p in rows))}")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data-dir", type=Path, default=DEFAULT_DATA_DIR)
    p.add_argument("--realistic-parts", type=Path, nargs="*", default=[])
    args = p.parse_args()
    write_cue_free(args.data_dir)
    if args.realistic_parts:
        split_realistic(args.realistic_parts)


if __name__ == "__main__":
    main()
