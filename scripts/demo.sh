#!/usr/bin/env bash
# The whole method on CPU: data, GRD -> COL -> CCoL and the two baselines (Sound of Pixels and
# Co-Separation) with the small-compute profile, evaluation on the same test mixtures, one table.
#   bash scripts/demo.sh                        the embedded synthetic MUSIC stand-in (built on first use)
#   DATA_ROOT=/my/music bash scripts/demo.sh    your own MUSIC-layout root: only what is missing is built
#   SEED=2 bash scripts/demo.sh                 another seed for the synthetic data and the training
# A second run reuses whatever is already built or trained. CKPT chooses where the runs go.
source "$(dirname "$0")/_demo_env.sh"
# 16 videos per class: the index's 10% val and 10% test are 2 videos of each of the 8 classes, so
# test scores rest on 16 videos (x 10 test_sep.csv rows x the demo profile's 4 clip positions).
VIDEOS_PER_CLASS="${VIDEOS_PER_CLASS:-16}"
start=$(date +%s)

echo "== 1/3 data: $DATA_ROOT"
# Only what the root lacks is built: the embedded synthetic videos into an empty or new root (a
# root holding data is never written over), frames and audio for the videos that lack them, the
# index files when it has none, simulated detections when it has synthetic annotations and no
# detections (scripts/make_synthetic_music.py, prepare_root).
"$PY" scripts/make_synthetic_music.py --prepare --out "$DATA_ROOT" \
  --videos-per-class "$VIDEOS_PER_CLASS" --seed "$SEED"
"$PY" scripts/cache_crops.py --root "$DATA_ROOT" --img-size "$IMG_SIZE" --mode ccol \
  --box-rule "$BOX_RULE" --out "$OBJECT_CACHE"
"$PY" scripts/cache_crops.py --root "$DATA_ROOT" --img-size "$IMG_SIZE" --mode sop \
  --out "$FRAME_CACHE"
"$PY" -c "import sys; from dataset import summarize; print(summarize(sys.argv[1]))" "$DATA_ROOT"
echo "   data ready after $(( $(date +%s) - start )) s"

echo "== 2/3 training (demo profile, CPU) and evaluation on the test mixtures"
mkdir -p "$CKPT"
# The paper's visual nets are frozen ImageNet ResNet-18s. The demo's narrow ones have no ImageNet
# weights (nothing is downloaded), so it first trains the same trunk, supervised, to name what
# object crops show, then every stage (SoP too) loads it frozen (scripts/pretrain_visual.py): on
# the embedded data from the synthetic package's image set, drawn apart from the videos as
# ImageNet is apart from MUSIC; on another root also from its train crops, as that root's videos
# may look like nothing the generator draws. How well it names the val and test crops is printed
# and kept in $CKPT/MUSIC_VIS/resnet18.json.
case "$DATA_ROOT" in
  data/synthetic | "data/synthetic_seed$SEED") VISUAL_SOURCE=images ;;
  *) VISUAL_SOURCE=both ;;
esac
[ -f "$VISUAL" ] || "$PY" scripts/pretrain_visual.py --root "$DATA_ROOT" --seed "$SEED" \
  --crop-cache "$OBJECT_CACHE" --box-rule "$BOX_RULE" --source "$VISUAL_SOURCE" --workers 2 \
  --out "$VISUAL"
echo "   visual features ready after $(( $(date +%s) - start )) s"
# Schedules and learning rates are the demo profile's (arguments.py, PROFILE_STAGE_DEFAULTS);
# GRD_EPOCHS, COL_EPOCHS, CCOL_EPOCHS, SOP_EPOCHS, COSEP_EPOCHS, GRD_LR_STEPS, CCOL_LR_STEPS,
# COSEP_LR_STEPS override them.
# TEST_EVERY=N also scores the test mixtures every N epochs of the chain, for learning curves
# (scripts/learning_curve.py); it costs time and changes nothing else.
OBJECTS+="${TEST_EVERY:+ --test_every $TEST_EVERY}"
# Jobs that nothing downstream waits for run beside the GRD -> COL -> CCoL chain, one core each;
# their output goes to a log and a failure stops the demo at the end.
background=()
trap 'jobs -p | xargs -r kill 2>/dev/null' EXIT   # a failed step stops the background jobs too
in_background() {  # NAME COMMAND...: run COMMAND with its output in $CKPT/demo_NAME.log
  local name=$1; shift
  ( "$@" ) > "$CKPT/demo_$name.log" 2>&1 &
  background+=("$!:$name")
  echo "   [$name] started in the background, log: $CKPT/demo_$name.log"
}
sop() {
  EPOCHS="${SOP_EPOCHS:-}" bash scripts/train_sop.sh --resume $FRAMES
  ID=MUSIC_SoP bash scripts/eval_ccol.sh $FRAMES
}
evaluate_both() {  # RUN: the plain and the silent-object evaluation
  ID=$1 bash scripts/eval_ccol.sh $OBJECTS
  ID=$1 bash scripts/eval_ccol_silent.sh $OBJECTS
}
cosep() {
  EPOCHS="${COSEP_EPOCHS:-}" LR_STEPS="${COSEP_LR_STEPS:-}" bash scripts/train_cosep.sh --resume $OBJECTS
  evaluate_both MUSIC_CoSep
}
# The baselines need nothing from the chain: one after the other on the second core.
baselines() { sop && cosep; }
in_background baselines baselines
EPOCHS="${GRD_EPOCHS:-}" LR_STEPS="${GRD_LR_STEPS:-}" bash scripts/train_grd.sh --resume $OBJECTS
EPOCHS="${COL_EPOCHS:-}" bash scripts/train_col.sh --resume $OBJECTS
in_background col_eval evaluate_both MUSIC_COL
EPOCHS="${CCOL_EPOCHS:-}" LR_STEPS="${CCOL_LR_STEPS:-}" bash scripts/train_ccol.sh --resume $OBJECTS
echo "   trained after $(( $(date +%s) - start )) s"
in_background ccol_silent_eval env ID=MUSIC_CCoL bash scripts/eval_ccol_silent.sh $OBJECTS
ID=MUSIC_CCoL bash scripts/eval_ccol.sh $OBJECTS
failed=0
for job in "${background[@]}"; do
  if ! wait "${job%%:*}"; then
    echo "   [${job#*:}] FAILED, see $CKPT/demo_${job#*:}.log" >&2; failed=1
  fi
done
[ "$failed" = 0 ] || exit 1

echo "== 3/3 results (demo finished after $(( $(date +%s) - start )) s)"
"$PY" scripts/results_table.py --ckpt "$CKPT" MUSIC_SoP MUSIC_CoSep MUSIC_COL MUSIC_CCoL
# Where CCoL beats Co-Separation, on the same mixtures: paired differences with intervals.
"$PY" scripts/results_table.py --ckpt "$CKPT" --compare MUSIC_CCoL MUSIC_CoSep
"$PY" scripts/results_table.py --ckpt "$CKPT" --compare MUSIC_CCoL MUSIC_CoSep --silent
echo "Open $CKPT/index.html in a browser to look at every run."
