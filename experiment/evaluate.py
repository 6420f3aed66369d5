"""Evaluates ONNX model folders (model.onnx, tokenizer.json, config.json) on validation and test.

    python experiment/evaluate.py --model-dir models/emotion --model-dir experiment/artifacts/fp32 \
        --out experiment/results/metrics.json --predictions models/emotion/eval/test_predictions.txt

Inference is done the way moodwire does it: normalize, tokenize with the
model's tokenizer.json, truncate to max_length, pad each length-sorted batch
to its longest text, softmax, argmax. `--predictions` writes the first model's
test-split argmax (one label per line): the Rust `moodwire eval` parity test
compares against it.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import onnxruntime as ort
from tokenizers import Tokenizer

from common import DEFAULT_DATA_DIR, LABELS, metrics, read_split, softmax, write_json
from normalize import NORMALIZATION_VERSION, normalize


class OnnxEmotionModel:
    def __init__(self, model_dir: Path, threads: int | None = None):
        self.config = json.loads((model_dir / "config.json").read_text())
        if self.config.get("normalization_version") != NORMALIZATION_VERSION:
            raise SystemExit(f"{model_dir}: normalization version differs from normalize.py")
        self.tokenizer = Tokenizer.from_file(str(model_dir / "tokenizer.json"))
        self.max_length = int(self.config["max_length"])
        self.tokenizer.enable_truncation(self.max_length)
        options = ort.SessionOptions()
        if threads:
            options.intra_op_num_threads = threads
        self.session = ort.InferenceSession(str(model_dir / "model.onnx"), options, providers=["CPUExecutionProvider"])
        self.input_names = [i.name for i in self.session.get_inputs()]
        self.labels = [self.config["id2label"][str(i)] for i in range(len(self.config["id2label"]))]

    def encode(self, texts: list[str]) -> list[list[int]]:
        # Normalized text is ASCII; past max_length * 32 characters it cannot
        # reach the model anyway, so it is cut before tokenizing (as in Rust).
        limit = self.max_length * 32
        return [e.ids for e in self.tokenizer.encode_batch([normalize(t)[:limit] for t in texts])]

    def run(self, batch: list[list[int]]) -> np.ndarray:
        longest = max(len(e) for e in batch)
        ids = np.zeros((len(batch), longest), dtype=np.int64)
        mask = np.zeros((len(batch), longest), dtype=np.int64)
        for row, e in enumerate(batch):
            ids[row, : len(e)] = e
            mask[row, : len(e)] = 1
        feeds = {"input_ids": ids, "attention_mask": mask}
        if "token_type_ids" in self.input_names:
            feeds["token_type_ids"] = np.zeros_like(ids)
        return softmax(self.session.run(None, feeds)[0])

    def predict_proba(self, texts: list[str]) -> np.ndarray:
        encodings = self.encode(texts)
        probabilities = np.zeros((len(texts), len(self.labels)), dtype=np.float32)
        for idx in plan_batches([len(e) for e in encodings]):
            probabilities[idx] = self.run([encodings[i] for i in idx])
        return probabilities


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


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model-dir", type=Path, action="append", required=True)
    p.add_argument("--data-dir", type=Path, default=DEFAULT_DATA_DIR)
    p.add_argument("--splits", nargs="+", default=["validation", "test"])
    p.add_argument("--out", type=Path, required=True, help="JSON file for all metrics")
    p.add_argument("--predictions", type=Path, help="write the first model's test-split labels here")
    p.add_argument("--posts", type=Path, default=Path(__file__).parent / "realistic_posts.jsonl",
                   help="hand-written realistic posts with an expected emotion, reported separately")
    args = p.parse_args()

    report = {}
    for n, model_dir in enumerate(args.model_dir):
        model = OnnxEmotionModel(model_dir)
        name = model.config["model_version"]
        report[name] = {"model_dir": str(model_dir), "size_bytes": (model_dir / "model.onnx").stat().st_size}
        for split in args.splits:
            texts, gold = read_split(args.data_dir, split)
            started = time.time()
            predicted = model.predict_proba(texts).argmax(-1).tolist()
            result = metrics(gold, predicted)
            result["seconds"] = round(time.time() - started, 2)
            report[name][split] = result
            print(f"{name} {split}: accuracy {result['accuracy']:.4f} macro-F1 {result['macro_f1']:.4f} "
                  f"weighted-F1 {result['weighted_f1']:.4f} ({result['seconds']} s)")
            if split == "test" and n == 0 and args.predictions:
                args.predictions.parent.mkdir(parents=True, exist_ok=True)
                args.predictions.write_text("".join(LABELS[i] + "\n" for i in predicted))
        if args.posts.exists():
            report[name]["realistic_posts"] = realistic_posts(model, args.posts)
    write_json(args.out, report)


def realistic_posts(model: OnnxEmotionModel, path: Path) -> dict:
    posts = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    probabilities = model.predict_proba([p["text"] for p in posts])
    rows = []
    for post, probs in zip(posts, probabilities):
        label = model.labels[int(probs.argmax())]
        rows.append({"text": post["text"], "expected": post["expected"], "predicted": label,
                     "score": round(float(probs.max()), 3)})
    correct = sum(r["expected"] == r["predicted"] for r in rows)
    print(f"  realistic posts: {correct}/{len(rows)} as expected")
    return {"correct": correct, "total": len(rows), "posts": rows}


if __name__ == "__main__":
    main()
