# Sourced by demo.sh and ladder.sh: the demo's data root, caches, frozen trunk and options, named in
# one place. Variables: SEED (1234), DATA_ROOT (the embedded data of that seed), CKPT, OMP_NUM_THREADS.
SEED="${SEED:-1234}"
if [ -z "${DATA_ROOT:-}" ]; then
  DATA_ROOT=data/synthetic
  [ "$SEED" = 1234 ] || DATA_ROOT="data/synthetic_seed$SEED"
fi
export DATA_ROOT
source "$(dirname "${BASH_SOURCE[0]}")/_env.sh"
export PROFILE=demo
# One compute thread per process: two jobs (each with one light data-loading worker) share 2 cores.
export OMP_NUM_THREADS="${OMP_NUM_THREADS:-1}"
# Crops resized once and stored as uint8, so training decodes no JPEG (objects, and whole frames for
# SoP); beside the data when the root is writable, else under $CKPT.
CACHE_ROOT="$DATA_ROOT/crop_cache"
if ! mkdir -p "$CACHE_ROOT" 2>/dev/null || [ ! -w "$CACHE_ROOT" ]; then
  CACHE_ROOT="$CKPT/crop_cache/$(basename "$DATA_ROOT")"
fi
# Object boxes follow the demo profile's --box_rule (arguments.py); its cache is built the same way.
BOX_RULE=$("$PY" -c "import arguments as a; print(a.PROFILES['demo'].get('box_rule', 'frame'))")
OBJECT_CACHE="$CACHE_ROOT/$([ "$BOX_RULE" = video ] && echo video_box || echo top_box)_32"
FRAME_CACHE="$CACHE_ROOT/full_frame_32"
# The frozen visual trunk every stage loads (scripts/pretrain_visual.py, run by demo.sh).
VISUAL="$CKPT/MUSIC_VIS/resnet18.pth"
OBJECTS="--crop_cache $OBJECT_CACHE --seed $SEED --weights_imagenet $VISUAL"
FRAMES="--crop_cache $FRAME_CACHE --seed $SEED --weights_imagenet $VISUAL"
