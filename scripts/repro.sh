#!/usr/bin/env bash
# How far the numbers move with the number of compute threads and loader workers, on a finished
# demo (same SEED and CKPT): one COL epoch from the demo's GRD, trained and scored on the test
# mixtures (fast metrics) under each setting, twice under the first. The repeat must match it to
# the last digit (tests/test_smoke.py checks that on a tiny chain); the others show what a machine
# with other thread and worker counts would report. Prints the runs' table, then each setting's
# paired difference with the first, beside the interval of the test videos.
#   bash scripts/demo.sh && bash scripts/repro.sh       SEED, DATA_ROOT, CKPT as for demo.sh
source "$(dirname "$0")/_demo_env.sh"
if [ ! -f "$CKPT/MUSIC_GRD/checkpoint_latest.pt" ]; then
  echo "error: $CKPT/MUSIC_GRD is not trained: run scripts/demo.sh with the same SEED and CKPT first" >&2
  exit 1
fi
# THREADS:WORKERS[:TAG], the first one the reference (the demo's own setting: 1 thread, 1 worker).
SETTINGS=(${REPRO_SETTINGS:-1:1:a 1:1:b 2:1:a 1:0:a 1:2:a})
runs=()
for setting in "${SETTINGS[@]}"; do
  IFS=: read -r threads workers tag <<< "$setting"
  id="MUSIC_COL_repro_t${threads}_w${workers}_${tag:-a}"
  runs+=("$id")
  [ -f "$CKPT/$id/results.json" ] && continue
  echo "== $id: $threads thread(s), $workers loader worker(s)"
  OMP_NUM_THREADS=$threads ID=$id EPOCHS=1 INIT="$CKPT/MUSIC_GRD" bash scripts/train_col.sh \
    --resume $OBJECTS --workers "$workers"
  OMP_NUM_THREADS=$threads ID=$id bash scripts/eval_ccol.sh $OBJECTS --workers "$workers" \
    --metrics_backend fast
done
"$PY" scripts/results_table.py --ckpt "$CKPT" "${runs[@]}"
for run in "${runs[@]:1}"; do
  "$PY" scripts/results_table.py --ckpt "$CKPT" --compare "$run" "${runs[0]}"
done
