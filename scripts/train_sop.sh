#!/usr/bin/env bash
# Sound-of-Pixels baseline: 2 whole-frame videos, binary masks, BCE. Every hyperparameter is
# arguments.py's: as Sound of Pixels, 100 epochs, SGD, lr_sound/lr_synthesizer 1e-3, lr_frame 1e-4,
# x0.1 after epochs 40 and 80, batch 80 (its 4 GPUs x 20). Variables as train_grd.sh.
source "$(dirname "$0")/_env.sh"
run_main --stage sop --id "${ID:-MUSIC_SoP}" --ckpt "$CKPT" --data_root "$DATA_ROOT" \
  --profile "$PROFILE" ${EPOCHS:+--num_epoch "$EPOCHS"} ${LR_STEPS:+--lr_steps $LR_STEPS} "$@"
