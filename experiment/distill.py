"""Distils fine-tuned six-emotion models into a shallower student (fewer encoder layers).

    HF_HUB_OFFLINE=1 python experiment/distill.py --teacher experiment/runs/weighted \
        --teacher experiment/runs/unweighted --init experiment/runs/soup --keep-layers 0,2,4 \
        --out experiment/runs/student-l3

Inference cost grows with the number of layers, so a 3-layer student of the 6-layer
model halves the work per post. The student starts from the layers of --init named by
--keep-layers (embeddings and classification head included) and learns from the hard
labels and the teachers' averaged soft labels (Hinton et al. 2015):

    loss = alpha * T^2 * KL(teacher_T || student_T) + (1 - alpha) * CE(student, label)

The kept checkpoint is the epoch with the best validation score (mean of accuracy and
macro-F1), as in fine_tune.py; the test split is never looked at here.
"""

from __future__ import annotations

import argparse
import random
import time
from pathlib import Path

import torch
from torch import nn
from torch.nn import functional as F
from transformers import AutoModelForSequenceClassification, AutoTokenizer

from common import DEFAULT_DATA_DIR, metrics, read_split, set_threads, write_json
from fine_tune import predict, predict_logits, seed_everything, train


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data-dir", type=Path, default=DEFAULT_DATA_DIR)
    p.add_argument("--teacher", type=Path, action="append", required=True, help="fine-tuned checkpoint (repeat for an ensemble)")
    p.add_argument("--init", type=Path, required=True, help="checkpoint whose layers the student starts from")
    p.add_argument("--keep-layers", default="0,2,4", help="encoder layers of --init the student keeps, in order")
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--epochs", type=int, default=6)
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--lr", type=float, default=1e-4)
    p.add_argument("--warmup", type=float, default=0.06)
    p.add_argument("--weight-decay", type=float, default=0.01)
    p.add_argument("--max-length", type=int, default=128)
    p.add_argument("--temperature", type=float, default=2.0)
    p.add_argument("--alpha", type=float, default=0.5, help="weight of the soft-label loss")
    p.add_argument("--augment", type=int, default=0, help="noisy copies of each training text, taught by the teachers alone")
    p.add_argument("--augment-p", type=float, default=0.1, help="chance that a word of a copy is dropped, and that it is replaced")
    p.add_argument("--seed", type=int, default=42)
    p.add_argument("--threads", type=int, default=None)
    return p.parse_args()


def noisy_copies(texts: list[str], copies: int, p: float, rng: random.Random) -> list[str]:
    """Each text with words dropped or replaced by words of the corpus (at their corpus
    frequency), a cheap version of TinyBERT's data augmentation: more text for the teachers
    to label. A copy may no longer carry its original label, so it only gets soft labels."""
    vocabulary = [word for text in texts for word in text.split()]
    out = []
    for _ in range(copies):
        for text in texts:
            words = []
            for word in text.split():
                roll = rng.random()
                if roll < p:
                    continue
                words.append(rng.choice(vocabulary) if roll < 2 * p else word)
            out.append(" ".join(words) or text)
    return out


def ensemble_logits(checkpoints: list[Path], encodings: list[list[int]], pad_id: int) -> torch.Tensor:
    """Mean of the teachers' logits for every text, in the order of `encodings`."""
    per_teacher = []
    for checkpoint in checkpoints:
        model = AutoModelForSequenceClassification.from_pretrained(checkpoint)
        per_teacher.append(predict_logits(model, encodings, pad_id))
        print(f"teacher {checkpoint}: done", flush=True)
    return torch.stack(per_teacher).mean(dim=0)


def shallow_student(init: Path, keep: list[int]):
    model = AutoModelForSequenceClassification.from_pretrained(init)
    layers = model.bert.encoder.layer
    if any(not 0 <= i < len(layers) for i in keep) or len(set(keep)) != len(keep):
        raise SystemExit(f"--keep-layers must name distinct layers of 0..{len(layers) - 1}")
    model.bert.encoder.layer = nn.ModuleList(layers[i] for i in keep)
    model.config.num_hidden_layers = len(keep)
    return model


def main() -> None:
    args = parse_args()
    threads = set_threads(args.threads)
    seed_everything(args.seed)
    keep = [int(i) for i in args.keep_layers.split(",")]

    train_x, train_y = read_split(args.data_dir, "train")
    val_x, val_y = read_split(args.data_dir, "validation")
    tokenizer = AutoTokenizer.from_pretrained(args.init)
    encode = lambda texts: tokenizer(texts, truncation=True, max_length=args.max_length)["input_ids"]  # noqa: E731
    # Noisy copies go after the originals, with the label -100 that the loss skips.
    rng = random.Random(args.seed)
    copies = noisy_copies(train_x, args.augment, args.augment_p, rng)
    train_enc, val_enc = encode(train_x + copies), encode(val_x)
    train_y = train_y + [-100] * len(copies)
    pad_id = tokenizer.pad_token_id

    started = time.time()
    soft = ensemble_logits(args.teacher, train_enc, pad_id)
    teacher_seconds = round(time.time() - started, 1)

    model = shallow_student(args.init, keep)
    start_val = metrics(val_y, predict(model, val_enc, pad_id))
    print(f"student before training: validation accuracy {start_val['accuracy']:.4f}", flush=True)
    t = args.temperature

    def batch_loss(batch: list[int], ids: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        logits = model(input_ids=ids, attention_mask=mask).logits
        targets = torch.tensor([train_y[i] for i in batch])
        hard = F.cross_entropy(logits, targets) if (targets >= 0).any() else logits.sum() * 0
        distilled = F.kl_div(
            F.log_softmax(logits / t, dim=-1), F.log_softmax(soft[batch] / t, dim=-1), reduction="batchmean", log_target=True
        )
        return args.alpha * t * t * distilled + (1 - args.alpha) * hard

    history, best = train(model, tokenizer, args, train_enc, {"validation": (val_enc, val_y)}, pad_id, rng, batch_loss)

    write_json(
        args.out / "training_log.json",
        {
            "recipe": "distillation",
            "teachers": [str(c) for c in args.teacher],
            "init": str(args.init),
            "kept_layers": keep,
            "hyperparameters": {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items() if k != "teacher"},
            "threads": threads,
            "training_texts": {"labelled": len(train_x), "noisy_copies": len(copies)},
            "teacher_seconds": teacher_seconds,
            "total_seconds": round(time.time() - started, 1),
            "validation_before_training": {"accuracy": start_val["accuracy"], "macro_f1": start_val["macro_f1"]},
            "history": history,
            "selected_epoch": best["epoch"],
            "selected_validation": best["validation"],
        },
    )


if __name__ == "__main__":
    main()
