#!/usr/bin/env bash
# The whole method on the embedded synthetic MUSIC stand-in, on CPU, in about 10-15 minutes:
# build the data (videos -> frames/audio -> index -> detections), train GRD -> COL -> CCoL and the
# SoP baseline with the small-compute profile, evaluate, and print one results table.
# A second run reuses whatever is already built or trained. DATA_ROOT and CKPT are overridable.
source "$(dirname "$0")/_env.sh"
export PROFILE=demo
# One compute thread: the other core runs the data-loading worker.
export OMP_NUM_THREADS="${OMP_NUM_THREADS:-1}"
VIDEOS_PER_CLASS="${VIDEOS_PER_CLASS:-12}"
start=$(date +%s)

echo "== 1/4 data: $DATA_ROOT"
if [ ! -f "$DATA_ROOT/videos.json" ]; then
  "$PY" scripts/make_synthetic_music.py --out "$DATA_ROOT" --videos-per-class "$VIDEOS_PER_CLASS" --seed 1234
fi
"$PY" scripts/extract_frames_audio.py --root "$DATA_ROOT"
[ -f "$DATA_ROOT/test_sep.csv" ] || "$PY" scripts/create_index_files.py --root "$DATA_ROOT" --seed 1234
"$PY" scripts/detect_objects.py --root "$DATA_ROOT" --from-annotations
# Crops resized once and stored as uint8, so training decodes no JPEG (objects, and whole frames for SoP).
"$PY" scripts/cache_crops.py --root "$DATA_ROOT" --img-size 32 --mode ccol
"$PY" scripts/cache_crops.py --root "$DATA_ROOT" --img-size 32 --mode sop
"$PY" -c "import sys; from dataset import summarize; print(summarize(sys.argv[1]))" "$DATA_ROOT"
echo "   data ready after $(( $(date +%s) - start )) s"

echo "== 2/4 training (demo profile, CPU)"
# Short runs need larger steps than the reference's 15k-iteration schedules.
OBJECTS="--crop_cache $DATA_ROOT/crop_cache/top_box_32"
FRAMES="--crop_cache $DATA_ROOT/crop_cache/full_frame_32"
SEP_LR="--lr_sound 1e-3 --lr_synthesizer 1e-3 --lr_frame 1e-3"
GRD_LR="--lr_sound_ground 3e-3 --lr_grounding 3e-3 --lr_frame_ground 3e-3"
EPOCHS="${GRD_EPOCHS:-15}" LR_STEPS="100" bash scripts/train_grd.sh --resume $OBJECTS $GRD_LR
EPOCHS="${COL_EPOCHS:-3}" LR_STEPS="100" bash scripts/train_col.sh --resume $OBJECTS $SEP_LR \
  --lr_sound_ground 1e-4 --lr_grounding 1e-4 --lr_frame_ground 1e-4
EPOCHS="${CCOL_EPOCHS:-6}" LR_STEPS="6" bash scripts/train_ccol.sh --resume $OBJECTS $SEP_LR \
  --lr_sound_ground 1e-3 --lr_grounding 1e-3 --lr_frame_ground 1e-3
EPOCHS="${SOP_EPOCHS:-3}" LR_STEPS="100" bash scripts/train_sop.sh --resume $FRAMES $SEP_LR
echo "   trained after $(( $(date +%s) - start )) s"

echo "== 3/4 evaluation on the test mixtures"
ID=MUSIC_SoP bash scripts/eval_ccol.sh $FRAMES
for run in MUSIC_COL MUSIC_CCoL; do ID=$run bash scripts/eval_ccol.sh $OBJECTS; done
for run in MUSIC_COL MUSIC_CCoL; do ID=$run bash scripts/eval_ccol_silent.sh $OBJECTS; done

echo "== 4/4 results (demo finished after $(( $(date +%s) - start )) s)"
"$PY" scripts/results_table.py --ckpt "$CKPT" MUSIC_SoP MUSIC_COL MUSIC_CCoL
echo "Open $CKPT/index.html in a browser to look at every run."
