#!/usr/bin/env bash
# Stage 2: co-learning, initialised from the GRD run's latest weights. Every hyperparameter is
# arguments.py's: for the paper, 60 epochs, separation lr 1e-4, grounding 1e-5, x0.1 after epochs
# 30 and 50, batch 48. Variables as train_grd.sh, plus INIT (the GRD run folder; default
# $CKPT/MUSIC_GRD).
source "$(dirname "$0")/_env.sh"
run_main --stage col --id "${ID:-MUSIC_COL}" --ckpt "$CKPT" --data_root "$DATA_ROOT" \
  --profile "$PROFILE" ${INIT:+--init_from "$INIT"} ${EPOCHS:+--num_epoch "$EPOCHS"} \
  ${LR_STEPS:+--lr_steps $LR_STEPS} "$@"
