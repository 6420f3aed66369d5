"""Runs the robustness suite on ONNX model folders (model.onnx, tokenizer.json, config.json).

    python experiment/evaluate.py --model-dir models/emotion \\
        --out models/emotion/eval/metrics.json --predictions models/emotion/eval/test_predictions.txt

Suites (`common.SUITES`): the plain validation and test splits; the same with the
template cue rewritten in four variants (`cues.py`); the realistic posts' dev and
test parts. For each: accuracy, macro/weighted F1, per-class table, confusion
matrix and expected calibration error (15 bins). `--suites` picks some (the
selection of candidates uses the validation side only; the test side is reported
once per shipped model).

Inference is done the way moodwire does it: normalize, tokenize with the model's
tokenizer.json, truncate to max_length (keeping the head and the tail of a long text
when config.json says `truncation_head`), pad each length-sorted batch to its longest
text, divide the logits by the model's calibrated temperature, softmax, argmax.
`--predictions` writes the first model's plain-test argmax (one label per line): the
Rust `moodwire eval` parity test compares against it.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np

from common import (
    LABELS,
    REPO_ROOT,
    SUITES,
    OnnxEmotionModel,
    expected_calibration_error,
    metrics,
    read_labelled,
    softmax,
    write_json,
)


def suite_report(model: OnnxEmotionModel, suite: str) -> tuple[dict, dict]:
    """The suite's pooled metrics with its ECE and each part's, and the raw outputs
    (`{part: (logits, labels)}`) for calibration."""
    report, outputs = {"parts": {}}, {}
    pooled_probabilities, pooled_labels = [], []
    started = time.time()
    for part, path in SUITES[suite]:
        texts, labels = read_labelled(path)
        logits = model.predict_logits(texts)
        probabilities = softmax(logits / model.temperature)
        outputs[part] = (logits, labels)
        pooled_probabilities.append(probabilities)
        pooled_labels += labels
        part_metrics = metrics(labels, probabilities.argmax(-1).tolist())
        part_metrics["ece"] = expected_calibration_error(probabilities, labels)
        report["parts"][part] = {k: part_metrics[k] for k in ("n", "accuracy", "macro_f1", "ece")}
        report["parts"][part]["file"] = str(path.relative_to(REPO_ROOT))
    probabilities = np.concatenate(pooled_probabilities)
    report.update(metrics(pooled_labels, probabilities.argmax(-1).tolist()))
    report["ece"] = expected_calibration_error(probabilities, pooled_labels)
    report["seconds"] = round(time.time() - started, 2)
    return report, outputs


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model-dir", type=Path, action="append", required=True)
    p.add_argument("--suites", nargs="+", default=list(SUITES), choices=list(SUITES))
    p.add_argument("--out", type=Path, required=True, help="JSON file for all metrics")
    p.add_argument("--predictions", type=Path, help="write the first model's plain-test labels here")
    args = p.parse_args()

    report = {}
    for n, model_dir in enumerate(args.model_dir):
        model = OnnxEmotionModel(model_dir)
        name = model.config["model_version"]
        report[name] = {
            "model_dir": str(model_dir),
            "size_bytes": (model_dir / "model.onnx").stat().st_size,
            "temperature": model.temperature,
        }
        for suite in args.suites:
            result, outputs = suite_report(model, suite)
            report[name][suite] = result
            print(f"{name} {suite}: accuracy {result['accuracy']:.4f} macro-F1 {result['macro_f1']:.4f} "
                  f"ECE {result['ece']:.4f} ({result['seconds']} s)")
            if len(result["parts"]) > 1:
                print("   " + ", ".join(f"{part} {m['accuracy']:.4f}" for part, m in result["parts"].items()))
            if suite == "test" and n == 0 and args.predictions:
                logits, _ = outputs["plain"]
                args.predictions.parent.mkdir(parents=True, exist_ok=True)
                args.predictions.write_text("".join(LABELS[i] + "\n" for i in logits.argmax(-1)))
    write_json(args.out, report)


if __name__ == "__main__":
    main()
