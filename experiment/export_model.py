"""Exports a fine-tuned model to ONNX, fuses it for CPU and quantizes it to INT8.

    python experiment/export_model.py --checkpoint experiment/runs/student-l3-aug --out models/emotion

Writes into --out:
  model.onnx        INT8 (dynamic quantization, per-channel QInt8 weights) of the fused graph
  tokenizer.json    the WordPiece tokenizer with padding and truncation switched off:
                    the runtime pads each batch to its longest text and truncates to max_length
  config.json       id2label, max_length, truncation_head (when trained with head + tail
                    truncation), model version, normalization version, inputs
and the same three files for the fused FP32 graph in --fp32-dir (for evaluation; not shipped).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import shutil
import tempfile
from pathlib import Path

import onnx
import torch
from onnxruntime.quantization import QuantType, quantize_dynamic
from onnxruntime.transformers.optimizer import optimize_model
from tokenizers import Tokenizer
from transformers import AutoConfig, AutoModelForSequenceClassification

from common import LABELS
from normalize import NORMALIZATION_VERSION

OPSET = 17


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--checkpoint", type=Path, required=True, help="output folder of fine_tune.py")
    p.add_argument("--out", type=Path, default=Path("models/emotion"))
    p.add_argument("--fp32-dir", type=Path, default=Path("experiment/artifacts/fp32"))
    p.add_argument("--max-length", type=int, default=128)
    p.add_argument("--name", default=None, help="default: moodwire-emotion-minilm-l<layers of the checkpoint>")
    return p.parse_args()


class LogitsOnly(torch.nn.Module):
    """Returns a plain tensor so the ONNX graph has one named output."""

    def __init__(self, model):
        super().__init__()
        self.model = model

    def forward(self, input_ids, attention_mask):
        return self.model(input_ids=input_ids, attention_mask=attention_mask).logits


def truncation(checkpoint: Path) -> dict:
    """How the checkpoint was trained to cut long texts (fine_tune.py's log): the
    runtime must cut them the same way. Head-only checkpoints say nothing."""
    log = checkpoint / "training_log.json"
    head = json.loads(log.read_text()).get("truncation_head") if log.exists() else None
    return {} if head is None else {"truncation_head": head}


def export_fp32(checkpoint: Path, path: Path) -> None:
    model = AutoModelForSequenceClassification.from_pretrained(checkpoint, attn_implementation="eager").eval()
    ids = torch.ones((2, 16), dtype=torch.long)
    mask = torch.ones((2, 16), dtype=torch.long)
    torch.onnx.export(
        LogitsOnly(model),
        (ids, mask),
        str(path),
        dynamo=False,
        opset_version=OPSET,
        input_names=["input_ids", "attention_mask"],
        output_names=["logits"],
        dynamic_axes={
            "input_ids": {0: "batch", 1: "sequence"},
            "attention_mask": {0: "batch", 1: "sequence"},
            "logits": {0: "batch"},
        },
    )


def fuse(raw: Path, fused: Path, checkpoint: Path) -> None:
    config = AutoConfig.from_pretrained(checkpoint)
    optimized = optimize_model(
        str(raw),
        model_type="bert",
        num_heads=config.num_attention_heads,
        hidden_size=config.hidden_size,
        opt_level=1,  # graph fusions only: the result stays portable across CPUs
    )
    print("fused operators:", optimized.get_fused_operator_statistics())
    optimized.save_model_to_file(str(fused))


def write_tokenizer(checkpoint: Path, path: Path) -> None:
    tokenizer = Tokenizer.from_file(str(checkpoint / "tokenizer.json"))
    tokenizer.no_padding()
    tokenizer.no_truncation()
    tokenizer.save(str(path))


def main() -> None:
    args = parse_args()
    args.name = args.name or f"moodwire-emotion-minilm-l{AutoConfig.from_pretrained(args.checkpoint).num_hidden_layers}"
    args.out.mkdir(parents=True, exist_ok=True)
    args.fp32_dir.mkdir(parents=True, exist_ok=True)
    fp32 = args.fp32_dir / "model.onnx"
    int8 = args.out / "model.onnx"
    with tempfile.TemporaryDirectory() as tmp:
        raw = Path(tmp) / "raw.onnx"
        export_fp32(args.checkpoint, raw)
        fuse(raw, fp32, args.checkpoint)
    quantize_dynamic(
        str(fp32),
        str(int8),
        weight_type=QuantType.QInt8,
        per_channel=True,
        # Fused contrib operators (Attention, SkipLayerNormalization) defeat ONNX
        # shape inference; their outputs are float tensors.
        extra_options={"DefaultTensorType": onnx.TensorProto.FLOAT},
    )
    write_tokenizer(args.checkpoint, args.out / "tokenizer.json")
    shutil.copy(args.out / "tokenizer.json", args.fp32_dir / "tokenizer.json")

    digest = hashlib.sha256(int8.read_bytes()).hexdigest()
    config = {
        "model_type": "bert",
        "name": args.name,
        "model_version": f"{args.name}-{digest[:12]}",
        "sha256": digest,
        "id2label": {str(i): label for i, label in enumerate(LABELS)},
        "label2id": {label: i for i, label in enumerate(LABELS)},
        "max_length": args.max_length,
        "normalization_version": NORMALIZATION_VERSION,
        **truncation(args.checkpoint),
        "inputs": ["input_ids", "attention_mask"],
        "output": "logits",
        "quantization": "dynamic INT8 (QInt8, per-channel weights)",
        "opset": OPSET,
    }
    (args.out / "config.json").write_text(json.dumps(config, indent=2) + "\n", encoding="utf-8")
    fp32_config = {**config, "model_version": f"{args.name}-fp32", "quantization": "none"}
    fp32_config.pop("sha256")
    (args.fp32_dir / "config.json").write_text(json.dumps(fp32_config, indent=2) + "\n", encoding="utf-8")
    print(f"wrote {int8} ({int8.stat().st_size / 1e6:.1f} MB), fp32 {fp32} ({fp32.stat().st_size / 1e6:.1f} MB)")
    print("model version:", config["model_version"])


if __name__ == "__main__":
    main()
