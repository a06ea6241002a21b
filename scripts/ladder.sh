#!/usr/bin/env bash
# The diagnostic ladder of a finished demo (docs/method.md, "Diagnostic ladder"): which link of the
# cycle limits the chain. Beside the demo's own COL and CCoL it trains
#   MUSIC_COL_true_gate      COL from the same GRD, its separation loss gated by the true sounding labels
#   MUSIC_CCoL_true_labels   CCoL from the same COL, grounded with the true labels instead of the ones
#                            its separation chooses
# (the two run side by side, one core each), scores both on the demo's test mixtures, scores COL and
# CCoL with ideal masks (--oracle_masks), measures the encoders' supervised ceilings
# (scripts/ceilings.py, $CKPT/ceilings.json), then prints the table and the paired differences.
# Every run is labelled a diagnostic in its results and pages.
#   bash scripts/demo.sh && bash scripts/ladder.sh      SEED, DATA_ROOT, CKPT as for demo.sh
source "$(dirname "$0")/_demo_env.sh"
for run in MUSIC_GRD MUSIC_COL MUSIC_CCoL; do
  if [ ! -f "$CKPT/$run/checkpoint_latest.pt" ]; then
    echo "error: $CKPT/$run is not trained: run scripts/demo.sh with the same SEED and CKPT first" >&2
    exit 1
  fi
done
start=$(date +%s)
trap 'jobs -p | xargs -r kill 2>/dev/null' EXIT
true_gate() {
  ID=MUSIC_COL_true_gate INIT="$CKPT/MUSIC_GRD" bash scripts/train_col.sh --resume $OBJECTS \
    --diag_true_gate
  ID=MUSIC_COL_true_gate bash scripts/eval_ccol.sh $OBJECTS
}
( true_gate ) > "$CKPT/ladder_true_gate.log" 2>&1 &
gate_job=$!
echo "   [true gate] COL in the background, log: $CKPT/ladder_true_gate.log"
ID=MUSIC_CCoL_true_labels INIT="$CKPT/MUSIC_COL" bash scripts/train_ccol.sh --resume $OBJECTS \
  --diag_true_labels
ID=MUSIC_CCoL_true_labels bash scripts/eval_ccol.sh $OBJECTS
for run in MUSIC_COL MUSIC_CCoL; do ID=$run bash scripts/eval_ccol.sh $OBJECTS --oracle_masks; done
"$PY" scripts/ceilings.py --root "$DATA_ROOT" --profile demo --crop_cache "$OBJECT_CACHE" \
  --weights_imagenet "$VISUAL" --seed "$SEED" --out "$CKPT/ceilings.json"
wait "$gate_job" || { echo "   [true gate] FAILED, see $CKPT/ladder_true_gate.log" >&2; exit 1; }
echo "== diagnostic ladder (after $(( $(date +%s) - start )) s)"
"$PY" scripts/results_table.py --ckpt "$CKPT" MUSIC_COL MUSIC_COL_true_gate MUSIC_CCoL \
  MUSIC_CCoL_true_labels "$@"
"$PY" scripts/results_table.py --ckpt "$CKPT" --compare MUSIC_COL_true_gate MUSIC_COL "$@"
"$PY" scripts/results_table.py --ckpt "$CKPT" --compare MUSIC_CCoL_true_labels MUSIC_CCoL "$@"
