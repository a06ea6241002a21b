#!/usr/bin/env bash
# Stage 3: cyclic co-learning, initialised from the COL run's latest weights. Every hyperparameter
# is arguments.py's: for the paper, 60 epochs, every lr 1e-4, x0.1 after epochs 30 and 50, batch
# 48. Variables as train_grd.sh, plus INIT (the COL run folder; default $CKPT/MUSIC_COL).
source "$(dirname "$0")/_env.sh"
run_main --stage ccol --id "${ID:-MUSIC_CCoL}" --ckpt "$CKPT" --data_root "$DATA_ROOT" \
  --profile "$PROFILE" ${INIT:+--init_from "$INIT"} ${EPOCHS:+--num_epoch "$EPOCHS"} \
  ${LR_STEPS:+--lr_steps $LR_STEPS} "$@"
