#!/usr/bin/env bash
# Silent-object evaluation: masks gated by mixture grounding (a CoSep run's scored as they are);
# sounding-slot SDR/SIR/SAR, energy leaked into the silent objects' slots (dB), sounding/silent
# accuracy, and the reference's 4-slot number. Options and variables as eval_ccol.sh.
source "$(dirname "$0")/_env.sh"
"$PY" main.py --mode eval --eval_silent --split test --id "${ID:-MUSIC_CCoL}" --ckpt "$CKPT" \
  --data_root "$DATA_ROOT" --num_val "${NUM_VAL:--1}" --metrics_backend mir_eval "$@"
