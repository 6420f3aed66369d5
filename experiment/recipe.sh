#!/usr/bin/env bash
# The shipped model's whole recipe, from the pretrained encoder to models/emotion/, timed:
#  1. two fine-tuning runs, class-weighted and unweighted loss (the imbalance ablation),
#     trained at the same time with half the cores each: on 2 cores that does about 1.2x
#     more steps per second than one run after the other on both cores, because the
#     small matrices of one run do not keep two threads busy;
#  2. their weight average (soup.py) as a third candidate;
#  3. each candidate exported, fused and quantized to INT8 (export_model.py);
#  4. the INT8 candidate with the best validation score shipped (select_candidate.py).
#
#   bash experiment/recipe.sh                                  # about 45 min on 2 cores
#   OUT=/tmp/model FP32_DIR=/tmp/model-fp32 bash experiment/recipe.sh   # anywhere else
#   DATA_DIR=/data/emotion bash experiment/recipe.sh           # another copy of the data set
#   FINE_TUNE_ARGS="--label-smoothing 0.1" RUNS=experiment/runs/ls OUT=/tmp/ls FP32_DIR=/tmp/ls-fp32 \
#       bash experiment/recipe.sh                              # a variant, beside the shipped model
set -euo pipefail
cd "$(dirname "$0")/.."

PY=${PY:-experiment/.venv/bin/python}
EPOCHS=${EPOCHS:-5}
RUNS=${RUNS:-experiment/runs/recipe}
OUT=${OUT:-models/emotion}
FP32_DIR=${FP32_DIR:-experiment/artifacts/fp32}
DATA_DIR=${DATA_DIR:-data/emotion}
read -r -a FINE_TUNE_ARGS <<< "${FINE_TUNE_ARGS:-}"
THREADS=$(( $(nproc) / 2 > 0 ? $(nproc) / 2 : 1 ))
export HF_HUB_OFFLINE=1

started=$(date +%s)
mkdir -p "$RUNS"
train() { # run name, class-weights scheme
    "$PY" experiment/fine_tune.py --out "$RUNS/$1" --class-weights "$2" --data-dir "$DATA_DIR" --epochs "$EPOCHS" \
        --threads "$THREADS" --freeze-word-embeddings "${FINE_TUNE_ARGS[@]}" > "$RUNS/$1.log" 2>&1
}
train weighted sqrt_inverse & weighted=$!
train unweighted none & unweighted=$!
wait "$weighted" || { echo "the weighted run failed: see $RUNS/weighted.log" >&2; exit 1; }
wait "$unweighted" || { echo "the unweighted run failed: see $RUNS/unweighted.log" >&2; exit 1; }
trained=$(date +%s)

"$PY" experiment/soup.py "$RUNS/weighted" "$RUNS/unweighted" --out "$RUNS/soup"
candidates=()
for run in weighted unweighted soup; do
    "$PY" experiment/export_model.py --checkpoint "$RUNS/$run" \
        --out "$RUNS/candidates/$run" --fp32-dir "$RUNS/candidates/$run-fp32"
    candidates+=(--model-dir "$RUNS/candidates/$run")
done
"$PY" experiment/evaluate.py "${candidates[@]}" --data-dir "$DATA_DIR" --splits validation --out "$RUNS/candidates_validation.json"
best=$("$PY" experiment/select_candidate.py "$RUNS/candidates_validation.json")
mkdir -p "$OUT" "$FP32_DIR"
cp "$best"/{model.onnx,tokenizer.json,config.json} "$OUT/"
cp "$best-fp32"/{model.onnx,tokenizer.json,config.json} "$FP32_DIR/"
finished=$(date +%s)
echo "shipped $best into $OUT"
echo "recipe: training $(( (trained - started) / 60 )) min, total $(( (finished - started) / 60 )) min $(( (finished - started) % 60 )) s"
