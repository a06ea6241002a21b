#!/usr/bin/env bash
# Evaluate a trained run on the test mixtures (test_sep.csv): SDR/SIR/SAR, mixture SDR, grounding.
# Every option but the evaluation's own is read from <run>/args.json (its profile included).
# Variables: DATA_ROOT, CKPT, ID (default MUSIC_CCoL), NUM_VAL.
source "$(dirname "$0")/_env.sh"
"$PY" main.py --mode eval --split test --id "${ID:-MUSIC_CCoL}" --ckpt "$CKPT" --data_root "$DATA_ROOT" \
  --num_val "${NUM_VAL:--1}" --metrics_backend mir_eval "$@"
