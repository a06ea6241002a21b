#!/usr/bin/env bash
# The GPU figures of the README's Speed table, in one run on a machine with a CUDA GPU:
#   1. a MUSIC-sized synthetic root (2-minute 640x360 videos), only what DATA_ROOT lacks (no
#      videos into a root holding data), and its crop cache at the model's crop size;
#   2. scripts/benchmark.py at the authors' sizes: CCoL step-only and end-to-end mixtures/s at
#      batch 48 with 16 loader workers, GPU busy %, and the time of a 260-mixture evaluation;
#   3. a short reference-profile CCoL training (TRAIN_DUP passes over the train list) and its
#      test evaluation, timed.
# Everything lands in OUT_DIR; OUT_DIR/gpu_figures.json holds the figures and the targets.
# Variables (defaults): DEVICE (cuda), SIZES (reference; tiny for a CPU check), BATCH (48),
# WORKERS (16), STEPS (20), VIDEOS (4 per class, for a generated root), TRAIN_DUP (20),
# AMP (1), DATA_ROOT (data/synthetic_2min), OUT_DIR (ckpt/gpu_figures). ImageNet weights are used
# when torchvision's cache holds them, else frozen random ResNets (the same compute).
DATA_ROOT="${DATA_ROOT:-data/synthetic_2min}"
source "$(dirname "$0")/_env.sh"
DEVICE="${DEVICE:-cuda}"
SIZES="${SIZES:-reference}"
BATCH="${BATCH:-48}"
WORKERS="${WORKERS:-16}"
STEPS="${STEPS:-20}"
VIDEOS="${VIDEOS:-4}"
TRAIN_DUP="${TRAIN_DUP:-20}"
AMP="${AMP:-1}"
OUT_DIR="${OUT_DIR:-ckpt/gpu_figures}"
mkdir -p "$OUT_DIR"
start=$(date +%s)
stamp() { echo "[gpu_figures] $(( $(date +%s) - start )) s: $*"; }

# The size flags of benchmark.py's preset, the crops they imply and the folder of those crops'
# cache (dataset/crop_cache.py names it).
SIZE_ARGS=$("$PY" -c "import sys; sys.path.insert(0, 'scripts'); import benchmark; \
print(' '.join(benchmark.SIZES['$SIZES']))")
# shellcheck disable=SC2086  # the flag string is a list of words
CROPS=$("$PY" -c "import sys; from arguments import parse_args; \
from dataset.crop_cache import default_cache_dir; \
a = parse_args(sys.argv[2:] + ['--weights_imagenet', 'none']); print(a.img_size, a.box_rule); \
print(default_cache_dir(sys.argv[1], a.img_size, 'ccol', a.box_rule))" "$DATA_ROOT" $SIZE_ARGS)
{ read -r IMG BOX_RULE; read -r CACHE; } <<< "$CROPS"
if "$PY" -c "import os, sys; from models.vision_net import imagenet_cache_path; \
sys.exit(not os.path.isfile(imagenet_cache_path()))" && [ "$SIZES" = reference ]; then
  WEIGHTS="--weights_imagenet imagenet"
else
  WEIGHTS="--weights_imagenet none --no-train_resnets"
fi
FAST=""
BENCH_FAST=""
if [ "$AMP" = 1 ] && [ "$DEVICE" != cpu ]; then
  FAST="--amp --channels_last"
  BENCH_FAST="--amp --channels-last"
fi
stamp "sizes $SIZES (crops ${IMG} px), device $DEVICE, batch $BATCH, $WORKERS workers, $WEIGHTS"

stamp "preparing $DATA_ROOT: what it lacks ($VIDEOS videos per class if it holds no data)"
"$PY" -c "import os, sys; sys.path.insert(0, 'scripts'); import benchmark; \
benchmark.build_synthetic_root(sys.argv[1], int(sys.argv[2]), workers=os.cpu_count(), \
**benchmark.REALISTIC_DATA)" "$DATA_ROOT" "$VIDEOS"
"$PY" scripts/cache_crops.py --root "$DATA_ROOT" --img-size "$IMG" --mode ccol \
  --box-rule "$BOX_RULE" --out "$CACHE" --workers "$WORKERS"
stamp "data and crop cache ready"

# shellcheck disable=SC2086  # the flag strings are lists of words
"$PY" scripts/benchmark.py --device "$DEVICE" --sizes "$SIZES" --data-root "$DATA_ROOT" \
  --stages ccol --parts b c d --batch-size "$BATCH" --workers "$WORKERS" --steps "$STEPS" \
  --main-args "$WEIGHTS" $BENCH_FAST --json "$OUT_DIR/benchmark.json" 2>&1 \
  | tee "$OUT_DIR/benchmark.log"
stamp "benchmark done"

# A fresh short run each time, in a folder of its own: run folders are never deleted.
RUNS="$OUT_DIR/runs_$(date +%Y%m%d_%H%M%S)"
# shellcheck disable=SC2086
"$PY" main.py --stage ccol --init_from none --id ccol_short --ckpt "$RUNS" \
  --data_root "$DATA_ROOT" --device "$DEVICE" $SIZE_ARGS --batch_size "$BATCH" \
  --workers "$WORKERS" \
  --dup_trainset "$TRAIN_DUP" --num_epoch 1 --crop_cache "$CACHE" $WEIGHTS $FAST \
  > "$OUT_DIR/train.out" 2>&1 || { tail -n 30 "$OUT_DIR/train.out"; exit 1; }
stamp "short training done"
# shellcheck disable=SC2086
"$PY" main.py --mode eval --id ccol_short --ckpt "$RUNS" --data_root "$DATA_ROOT" \
  --device "$DEVICE" $SIZE_ARGS --batch_size "$BATCH" --workers "$WORKERS" \
  --crop_cache "$CACHE" $FAST \
  > "$OUT_DIR/eval.out" 2>&1 || { tail -n 30 "$OUT_DIR/eval.out"; exit 1; }
stamp "evaluation done"

"$PY" - "$OUT_DIR" "$RUNS/ccol_short" "$(( $(date +%s) - start ))" <<'EOF'
"""Collects the figures of this run into gpu_figures.json, beside the targets they are judged by."""
import json
import os
import re
import sys

import utils

out_dir, run_dir, wall_s = sys.argv[1], sys.argv[2], int(sys.argv[3])
bench = json.load(open(os.path.join(out_dir, "benchmark.json")))
step = bench.get("step", {}).get("ccol", {})
ends = bench.get("end_to_end", {}).get("ccol", {})
end = ends.get("cache") or ends.get("jpeg") or {}
log = open(os.path.join(run_dir, "train.log")).read()
# The epoch's last progress line: mixtures/s since the epoch began (loader start-up included).
rates = re.findall(r"\[train\] epoch 1 it (\d+)/(\d+) .* ([\d.]+) mix/s", log)
results = json.load(open(os.path.join(run_dir, "results.json")))
step_rate, end_rate = step.get("mixtures_per_s"), end.get("mixtures_per_s")
figures = {
    "config": bench.get("config"),
    "ccol_step_only_mixtures_per_s": step_rate,
    "ccol_end_to_end_mixtures_per_s": end_rate,
    "end_to_end_over_step_only": end_rate / step_rate if end_rate and step_rate else None,
    "gpu_busy_percent": end.get("gpu_util_percent"),
    "peak_memory_gib": step.get("max_memory_gib"),
    "eval_260_mixtures_min": {k: bench.get("eval", {}).get(f"test_list_{k}_min")
                              for k in ("fast", "mir_eval")},
    "short_training": {"iterations": int(rates[-1][1]) if rates else None,
                       "mixtures_per_s": float(rates[-1][2]) if rates else None},
    "short_training_eval": {k: results.get(k) for k in ("num_mixtures", "eval_seconds", "sdr")},
    "targets": {"end_to_end_mixtures_per_s": 365, "end_to_end_over_step_only": 0.8,
                "gpu_busy_percent": 85,
                "authors_code_h200": {"mixtures_per_s": 73, "gpu_busy_percent": 40}},
    "wall_s": wall_s,
}
utils.atomic_write_json(figures, os.path.join(out_dir, "gpu_figures.json"))
print(json.dumps({k: v for k, v in figures.items() if k != "config"}, indent=2))
EOF
