"""Measures seconds per training step of fine_tune.py's loop (batch 32, length-grouped
batches, its AdamW and train_step; no learning-rate schedule), to size the recipe
against its time budget. Run two at once to see what side-by-side runs do:

    python experiment/step_time.py --threads 2
    python experiment/step_time.py --threads 2 --freeze-word-embeddings
    python experiment/step_time.py --threads 1 --freeze-word-embeddings & \\
        python experiment/step_time.py --threads 1 --freeze-word-embeddings; wait
"""

from __future__ import annotations

import argparse
import random
import time

import torch
from transformers import AutoModelForSequenceClassification, AutoTokenizer

from common import DEFAULT_DATA_DIR, LABELS, base_model_dir, read_split, set_threads
from fine_tune import adamw, collate, freeze_word_embeddings, length_grouped_batches, train_step

WARM_UP_STEPS = 5


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--threads", type=int, default=None)
    p.add_argument("--freeze-word-embeddings", action="store_true")
    p.add_argument("--steps", type=int, default=40)
    args = p.parse_args()
    threads = set_threads(args.threads)
    texts, labels = read_split(DEFAULT_DATA_DIR, "train")
    tokenizer = AutoTokenizer.from_pretrained(base_model_dir())
    encodings = tokenizer(texts, truncation=True, max_length=128)["input_ids"]
    model = AutoModelForSequenceClassification.from_pretrained(base_model_dir(), num_labels=len(LABELS))
    if args.freeze_word_embeddings:
        freeze_word_embeddings(model)
    optimizer = adamw(model, lr=1e-4, weight_decay=0.01)
    loss_fn = torch.nn.CrossEntropyLoss()
    batches = length_grouped_batches([len(e) for e in encodings], 32, random.Random(1))
    model.train()
    for step, batch in enumerate(batches[: WARM_UP_STEPS + args.steps]):
        if step == WARM_UP_STEPS:
            started = time.perf_counter()
        ids, mask = collate([encodings[i] for i in batch], tokenizer.pad_token_id)
        loss = loss_fn(model(input_ids=ids, attention_mask=mask).logits, torch.tensor([labels[i] for i in batch]))
        train_step(model, optimizer, loss)
    seconds = (time.perf_counter() - started) / args.steps
    print(f"threads {threads}, word embeddings {'fixed' if args.freeze_word_embeddings else 'trained'}: {seconds:.3f} s per step")


if __name__ == "__main__":
    main()
