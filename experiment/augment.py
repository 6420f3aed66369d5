"""The training set of the robust recipe: the emotion training split, made to lean
less on its template, plus the event-carried posts written for this project.

- **Cue rewriting and removal** (`cues.py`): each training text with the template cue
  is, with probability `cue_share`, replaced by one of the four rewritten variants
  (chosen at random), so the label has to come from the rest of the text.
- **Reddit registers**: with probability `register_share`, a text gets what posts
  carry around their content and the model's normalization keeps (words of
  "EDIT:", "TL;DR", "lol", a link's text is dropped anyway): a prefix or suffix that
  says nothing of the emotion.
- **Title + body**: with probability `compose_share`, a text is joined to another of
  the same label as a title and its body (moodwire classifies "title\\nbody").
- **Consistency pairs** (`cue_free_pairs`, for the consistency loss of `fine_tune.py
  --consistency-share`): a share of the texts that still carry the cue, each with a
  cue-free copy (a random variant); the loss pulls the two predictions together.
- **Event-carried posts** (`data/events/*.jsonl`, written from `data/events/BRIEF.md`):
  all of them, every epoch. They are the only source of posts whose emotion comes from
  what happened rather than from a word that names it.

Casing, punctuation, apostrophes and most markdown need no augmentation: the model
never sees them (`normalize.py` maps every text to lowercase letters and spaces).
Nothing here reads the validation or test splits or the realistic set.
"""

from __future__ import annotations

import json
import random
from pathlib import Path

from common import EXPERIMENT_DATA, LABEL_TO_ID, read_split
from cues import VARIANTS, has_cue, rewrite

EVENTS_DIR = EXPERIMENT_DATA / "events"

# Words posts carry that say nothing of the author's emotion.
PREFIXES = ["throwaway account for obvious reasons", "long time lurker first time poster", "update",
            "serious question", "not sure where else to post this", "mobile user sorry for formatting",
            "sorry for the long post", "first post here"]
SUFFIXES = ["edit typo", "edit formatting", "tl dr see title", "thanks for reading", "idk", "tbh",
            "lol", "just needed to get this out", "anyone else", "thoughts", "update to follow"]


def read_events(folder: Path = EVENTS_DIR) -> tuple[list[str], list[int]]:
    texts, labels = [], []
    for path in sorted(folder.glob("*.jsonl")):
        for line in path.read_text(encoding="utf-8").splitlines():
            if line.strip():
                row = json.loads(line)
                texts.append(row["text"])
                labels.append(LABEL_TO_ID[row["label"]])
    return texts, labels


def training_set(
    data_dir: Path,
    seed: int,
    cue_share: float = 0.5,
    register_share: float = 0.1,
    compose_share: float = 0.1,
    events_dir: Path | None = EVENTS_DIR,
) -> tuple[list[str], list[int], dict]:
    """The augmented training texts and labels, and counts of what was done."""
    rng = random.Random(seed)
    texts, labels = read_split(data_dir, "train")
    by_label: dict[int, list[str]] = {}
    for text, label in zip(texts, labels):
        by_label.setdefault(label, []).append(text)
    counts = {"split": len(texts), "cue_rewritten": 0, "registers": 0, "composed": 0, "events": 0}
    out = []
    for text, label in zip(texts, labels):
        if has_cue(text) and rng.random() < cue_share:
            text = rewrite(text, rng.choice(VARIANTS))
            counts["cue_rewritten"] += 1
        if rng.random() < register_share:
            if rng.random() < 0.5:
                text = f"{rng.choice(PREFIXES)} {text}"
            else:
                text = f"{text} {rng.choice(SUFFIXES)}"
            counts["registers"] += 1
        if rng.random() < compose_share:
            title = rng.choice(by_label[label])
            text = f"{title}\n{text}"
            counts["composed"] += 1
        out.append(text)
    if events_dir is not None:
        event_texts, event_labels = read_events(events_dir)
        out += event_texts
        labels = labels + event_labels
        counts["events"] = len(event_texts)
    return out, labels, counts


def cue_free_pairs(texts: list[str], seed: int, share: float) -> dict[int, str]:
    """{index: cue-free copy} for `share` of the texts that still carry the cue. Its
    own random stream, so the training set itself is the same with or without pairs."""
    rng = random.Random(seed + 1)
    return {
        i: rewrite(text, rng.choice(VARIANTS))
        for i, text in enumerate(texts)
        if has_cue(text) and rng.random() < share
    }
