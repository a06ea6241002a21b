#!/usr/bin/env bash
# Sound-of-Pixels baseline: 2 whole-frame videos, binary masks, BCE (reference: 100 epochs,
# lr_sound/lr_synthesizer 1e-3, lr_frame 1e-4, x0.1 at epochs 40 and 80, batch 4x20).
source "$(dirname "$0")/_env.sh"
run_main --stage sop --id "${ID:-MUSIC_SoP}" --ckpt "$CKPT" --data_root "$DATA_ROOT" --profile "$PROFILE" \
  --num_epoch "${EPOCHS:-100}" --lr_steps ${LR_STEPS:-40 80} \
  --lr_sound 1e-3 --lr_synthesizer 1e-3 --lr_frame 1e-4 "$@"
