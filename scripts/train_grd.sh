#!/usr/bin/env bash
# Stage 1: grounding warm-up. Every hyperparameter is arguments.py's (STAGE_DEFAULTS, by profile):
# for the paper, 40 epochs at lr 1e-4, x0.1 after epochs 20 and 30, batch 48, frozen ImageNet
# ResNets. Variables: DATA_ROOT, NUM_GPUS, PROFILE (reference|demo), CKPT, ID; EPOCHS and LR_STEPS
# override the schedule when set. Extra arguments go to main.py and override any default.
source "$(dirname "$0")/_env.sh"
run_main --stage grd --id "${ID:-MUSIC_GRD}" --ckpt "$CKPT" --data_root "$DATA_ROOT" \
  --profile "$PROFILE" ${EPOCHS:+--num_epoch "$EPOCHS"} ${LR_STEPS:+--lr_steps $LR_STEPS} "$@"
