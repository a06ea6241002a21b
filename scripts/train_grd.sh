#!/usr/bin/env bash
# Stage 1: grounding warm-up (reference: 40 epochs, lr 1e-4, x0.1 at epochs 20 and 30, batch 4x12).
# Variables: DATA_ROOT, NUM_GPUS, PROFILE (reference|demo), CKPT, ID, EPOCHS, LR_STEPS; extra args go to main.py.
source "$(dirname "$0")/_env.sh"
run_main --stage grd --id "${ID:-MUSIC_GRD}" --ckpt "$CKPT" --data_root "$DATA_ROOT" --profile "$PROFILE" \
  --num_epoch "${EPOCHS:-40}" --lr_steps ${LR_STEPS:-20 30} \
  --lr_sound_ground 1e-4 --lr_grounding 1e-4 --lr_frame_ground 1e-4 "$@"
