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
# SoP): the demo profile's crop size and object box rule (arguments.py), and the caches' folders
# (dataset/crop_cache.py), beside the data when the root is writable, else under $CKPT.
CROPS=$("$PY" -c "import sys; from arguments import build_parser; \
from dataset.crop_cache import default_cache_dir; root, ckpt = sys.argv[1:]; \
a = build_parser('ccol', 'demo').parse_args([]); print(a.img_size, a.box_rule); \
print(default_cache_dir(root, a.img_size, 'ccol', a.box_rule, fallback=ckpt)); \
print(default_cache_dir(root, a.img_size, 'sop', fallback=ckpt))" "$DATA_ROOT" "$CKPT")
{ read -r IMG_SIZE BOX_RULE; read -r OBJECT_CACHE; read -r FRAME_CACHE; } <<< "$CROPS"
# The frozen visual trunk every stage loads (scripts/pretrain_visual.py, run by demo.sh).
VISUAL="$CKPT/MUSIC_VIS/resnet18.pth"
OBJECTS="--crop_cache $OBJECT_CACHE --seed $SEED --weights_imagenet $VISUAL"
FRAMES="--crop_cache $FRAME_CACHE --seed $SEED --weights_imagenet $VISUAL"
