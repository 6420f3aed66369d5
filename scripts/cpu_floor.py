#!/usr/bin/env python3
"""How fast can the shipped model ever be on this CPU? Its matrix products alone, timed.

    make bench-floor      (= .venv-bench/bin/python scripts/cpu_floor.py)

A BERT-style encoder does almost all of its arithmetic in four matrix products per
layer (query/key/value, attention output, feed-forward in, feed-forward out). This
script reads the layer count and sizes from models/emotion/model.onnx, builds an ONNX
graph that does nothing but those products for every layer (`MatMulInteger`: uint8
activations times int8 weights, the kernel behind the model's DynamicQuantizeMatMul
and QAttention), and times it on exactly the token shapes of the benchmark's
length-bucketed batches, beside the whole model, one after the other in one run.

Nothing else runs in that graph: no quantization of activations, attention softmax,
layer norms, GELU, embeddings, tokenization. So no runtime built on ONNX Runtime's CPU
kernels can run the model faster than the products alone, and a target below them is
out of reach for this model on this CPU, whatever the code around the model does.
"""

from __future__ import annotations

import argparse
import json
import re
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
from onnx import TensorProto, helper, numpy_helper

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "experiment"))
from common import OnnxEmotionModel, pad  # noqa: E402

BATCH = 16  # the batch size of the benchmark's length-bucketed loops


def encoder_shape(model_path: Path) -> tuple[int, int, int]:
    """(layers, hidden, intermediate) of the quantized encoder, read from its weights."""
    model = onnx.load(str(model_path))
    weights = {init.name: init.dims for init in model.graph.initializer}
    attention = [n for n in model.graph.node if n.op_type == "QAttention"]
    if not attention:
        raise SystemExit(f"{model_path}: no QAttention node; this script expects the fused INT8 export")
    hidden = weights[attention[0].input[1]][0]
    intermediate = max(
        weights[n.input[1]][1] for n in model.graph.node if n.op_type == "MatMulInteger" and n.input[1] in weights
    )
    return len(attention), hidden, intermediate


def products_only(layers: int, hidden: int, intermediate: int) -> bytes:
    """A graph of the encoder's matrix products and nothing else, with random int8 weights."""
    rng = np.random.default_rng(0)
    per_layer = [("h", hidden, 3 * hidden), ("h", hidden, hidden), ("h", hidden, intermediate), ("i", intermediate, hidden)]
    nodes, weights, outputs = [], [], []
    for layer in range(layers):
        for k, (source, rows, cols) in enumerate(per_layer):
            name = f"w{layer}_{k}"
            weights.append(numpy_helper.from_array(rng.integers(-127, 128, (rows, cols), dtype=np.int8), name))
            nodes.append(helper.make_node("MatMulInteger", [source, name], [f"y{layer}_{k}"]))
            outputs.append(helper.make_tensor_value_info(f"y{layer}_{k}", TensorProto.INT32, ["m", cols]))
    inputs = [
        helper.make_tensor_value_info("h", TensorProto.UINT8, ["m", hidden]),
        helper.make_tensor_value_info("i", TensorProto.UINT8, ["m", intermediate]),
    ]
    graph = helper.make_graph(nodes, "products_only", inputs, outputs, weights)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    return model.SerializeToString()


class Runner:
    def __init__(self, model_dir: Path, threads: int):
        self.model = OnnxEmotionModel(model_dir, threads or None)
        self.layers, self.hidden, self.intermediate = encoder_shape(model_dir / "model.onnx")
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        self.products = ort.InferenceSession(
            products_only(self.layers, self.hidden, self.intermediate), options, providers=["CPUExecutionProvider"]
        )

    def batches(self, texts: list[str], bucketed: bool = True) -> list[tuple[np.ndarray, np.ndarray]]:
        """Batches of 16, each padded to its longest text: sorted by token count first
        (moodwire's length-bucketing) or in input order (the original service's loop)."""
        encodings = self.model.encode(texts)
        if bucketed:
            encodings.sort(key=len)
        return [pad(encodings[start : start + BATCH]) for start in range(0, len(encodings), BATCH)]

    def time_model(self, batches) -> float:
        started = time.perf_counter()
        for ids, mask in batches:
            self.model.session.run(None, {"input_ids": ids, "attention_mask": mask})
        return time.perf_counter() - started

    def time_products(self, batches) -> float:
        feeds = []
        for ids, _ in batches:
            m = ids.size  # every padded token goes through every product, as in the model
            feeds.append({"h": np.full((m, self.hidden), 100, np.uint8), "i": np.full((m, self.intermediate), 100, np.uint8)})
        started = time.perf_counter()
        for feed in feeds:
            self.products.run(None, feed)
        return time.perf_counter() - started


def sample_posts(path: Path, keyword: str, limit: int = 250) -> list[str]:
    """What `moodwire analyze KEYWORD --limit 250` classifies from the bundled corpus:
    title and body of the newest posts that mention the keyword as a whole word."""
    word = re.compile(rf"(?<!\w){re.escape(keyword)}(?!\w)", re.IGNORECASE)
    posts = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    hits = [p for p in posts if word.search(f"{p['title']} {p['selftext']}")]
    hits.sort(key=lambda p: p["created_utc"], reverse=True)
    return ["\n".join(x for x in (p["title"].strip(), p["selftext"].strip()) if x) for p in hits[:limit]]


def interleaved(runs: dict, repeats: int) -> dict:
    """Median ms of each timed run, taken in turn each repeat so that the machine's
    drift (shared, noisy) hits them alike."""
    for fn in runs.values():
        fn()  # warm-up
    samples = {name: [] for name in runs}
    for _ in range(repeats):
        for name, fn in runs.items():
            samples[name].append(fn() * 1e3)
    return {name: round(statistics.median(ms), 3) for name, ms in samples.items()}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model-dir", type=Path, default=Path("models/emotion"))
    p.add_argument("--corpus", type=Path, default=Path("data/emotion/test.txt"))
    p.add_argument("--sample", type=Path, default=Path("data/sample/posts.ndjson"))
    p.add_argument("--keyword", default="AI", help="keyword of the sample-post row (moodwire bench's default)")
    p.add_argument("--threads", type=int, default=0, help="intra-op threads; 0 = all cores (moodwire's default)")
    p.add_argument("--repeats", type=int, default=10)
    p.add_argument("--whole-repeats", type=int, default=3)
    p.add_argument("--single", type=int, default=100, help="posts timed one at a time")
    args = p.parse_args()

    texts = [line.rsplit(";", 1)[0] for line in args.corpus.read_text(encoding="utf-8").splitlines() if line.strip()]
    runner = Runner(args.model_dir, args.threads)
    first_250 = runner.batches(texts[:250])
    whole, whole_in_order = runner.batches(texts), runner.batches(texts, bucketed=False)
    singles = [runner.batches([t]) for t in texts[: args.single]]
    sample = runner.batches(sample_posts(args.sample, args.keyword))

    def each_single(time_fn):
        return lambda: statistics.median(time_fn(b) for b in singles)

    rows = {
        f"1 post (median of the first {args.single})": interleaved(
            {"products": each_single(runner.time_products), "model": each_single(runner.time_model)}, args.repeats
        ),
        "250 posts": interleaved(
            {"products": lambda: runner.time_products(first_250), "model": lambda: runner.time_model(first_250)},
            args.repeats,
        ),
        f"250 sample posts mentioning {args.keyword} (a cold analysis's inference)": interleaved(
            {"products": lambda: runner.time_products(sample), "model": lambda: runner.time_model(sample)},
            args.repeats,
        ),
        "whole corpus": interleaved(
            {
                "products": lambda: runner.time_products(whole),
                "model": lambda: runner.time_model(whole),
                "model, original loop (16 in input order)": lambda: runner.time_model(whole_in_order),
            },
            args.whole_repeats,
        ),
    }
    tokens = sum(ids.size for ids, _ in first_250)
    macs_per_token = runner.layers * (4 * runner.hidden**2 + 2 * runner.hidden * runner.intermediate)
    gops = 2 * macs_per_token * tokens / (rows["250 posts"]["products"] / 1e3) / 1e9
    print(json.dumps({
        "encoder": {"layers": runner.layers, "hidden": runner.hidden, "intermediate": runner.intermediate,
                    "mflop_per_token": round(2 * macs_per_token / 1e6, 1)},
        "padded_tokens_in_250_posts": tokens,
        "padded_tokens_in_250_sample_posts": sum(ids.size for ids, _ in sample),
        # With the same model on both sides, time follows tokens: this ratio bounds what
        # any batching can gain over the original loop.
        "whole_corpus_tokens": {
            "real": sum(int(mask.sum()) for _, mask in whole),
            "padded, bucketed": sum(ids.size for ids, _ in whole),
            "padded, original loop": sum(ids.size for ids, _ in whole_in_order),
        },
        "products_gops_250_posts": round(gops, 1),
        "median_ms": rows,
    }, indent=2))


if __name__ == "__main__":
    main()
