#!/usr/bin/env bash
# The shipped model's whole recipe, from the pretrained encoder to models/emotion/, timed:
#  1. one fine-tuning run on the robust training set (augment.py: the emotion split with
#     its template cue rewritten in 35 % of the texts, plus the event-carried posts of
#     experiment/data/events), the loss weighted by 1/sqrt(class frequency), keeping the
#     epoch with the best mean accuracy over the selection suites (plain validation,
#     cue-free validation, realistic dev posts);
#  2. exported, fused and quantized to INT8 (export_model.py);
#  3. temperature scaling fitted on the plain and cue-free validation splits and
#     stored in config.json (calibrate.py);
#  4. the selection suites evaluated (evaluate.py), and the model copied to OUT.
# The test side of the suite (plain test, cue-free test, realistic test) plays no
# part: report it once afterwards (README, "Reproducing it").
#
#   bash experiment/recipe.sh                                  # about 41 min on 2 cores
#   OUT=/tmp/model FP32_DIR=/tmp/model-fp32 bash experiment/recipe.sh   # anywhere else
#   FINE_TUNE_ARGS="--cue-share 0.3" RUN=experiment/runs/cue30 OUT=/tmp/cue30 FP32_DIR=/tmp/cue30-fp32 \
#       bash experiment/recipe.sh                              # a variant, beside the shipped model
set -euo pipefail
cd "$(dirname "$0")/.."

PY=${PY:-experiment/.venv/bin/python}
EPOCHS=${EPOCHS:-4}
RUN=${RUN:-experiment/runs/robust}
OUT=${OUT:-models/emotion}
FP32_DIR=${FP32_DIR:-experiment/artifacts/fp32}
DATA_DIR=${DATA_DIR:-data/emotion}
read -r -a FINE_TUNE_ARGS <<< "${FINE_TUNE_ARGS:-}"
export HF_HUB_OFFLINE=1

started=$(date +%s)
mkdir -p "$(dirname "$RUN")"
"$PY" experiment/fine_tune.py --out "$RUN" --augment --cue-share 0.35 --class-weights sqrt_inverse \
    --data-dir "$DATA_DIR" --epochs "$EPOCHS" --threads "$(nproc)" --freeze-word-embeddings "${FINE_TUNE_ARGS[@]}" \
    > "$RUN.log" 2>&1 || { echo "the training run failed: see $RUN.log" >&2; exit 1; }
trained=$(date +%s)

candidate="$RUN-int8"
"$PY" experiment/export_model.py --checkpoint "$RUN" --out "$candidate" --fp32-dir "$RUN-fp32"
"$PY" experiment/calibrate.py --model-dir "$candidate" --report "$RUN-calibration.json"
"$PY" experiment/evaluate.py --model-dir "$candidate" \
    --suites validation validation_cue_free realistic_dev --out "$RUN-selection.json"
mkdir -p "$OUT" "$FP32_DIR"
cp "$candidate"/{model.onnx,tokenizer.json,config.json} "$OUT/"
cp "$RUN-fp32"/{model.onnx,tokenizer.json,config.json} "$FP32_DIR/"
finished=$(date +%s)
echo "shipped $candidate into $OUT"
echo "recipe: training $(( (trained - started) / 60 )) min, total $(( (finished - started) / 60 )) min $(( (finished - started) % 60 )) s"
